package upstream

// Member is a backend as one snapshot sees it: the shared Backend plus the
// weight this snapshot gives it.
type Member struct {
	*Backend
	Weight int // share of traffic relative to the other members; 0 means none
}

// Pool is the ordered, immutable list of backends of one snapshot.
type Pool struct {
	Members []Member
}
