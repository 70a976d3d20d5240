package config

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes of a config file's content. It watches the
// file's directory with fsnotify, which catches editors that save by
// renaming a new file over the old one and ConfigMap-style symlink swaps,
// and also polls the file every interval, for file systems where
// notifications do not arrive (NFS, some container mounts).
//
// A change is reported only when the bytes differ from the last ones seen,
// so touching the file or a burst of events causes at most one reload.
type Watcher struct {
	path     string
	interval time.Duration
	last     [sha256.Size]byte
}

// debounce lets an editor finish writing (truncate, write, rename) before
// the file is read.
const debounce = 100 * time.Millisecond

// NewWatcher returns a watcher of path that polls every interval. The
// file's current content is the baseline: only later changes are reported.
func NewWatcher(path string, interval time.Duration) *Watcher {
	w := &Watcher{path: path, interval: interval}
	if data, err := os.ReadFile(path); err == nil {
		w.last = sha256.Sum256(data)
	}
	return w
}

// Run calls onChange after each change of the file's content until ctx is
// done. If the directory cannot be watched for notifications, it tells
// onNotifyError once and relies on polling alone.
func (w *Watcher) Run(ctx context.Context, onChange func(), onNotifyError func(error)) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	notifier, err := fsnotify.NewWatcher()
	if err == nil {
		defer notifier.Close()
		err = notifier.Add(filepath.Dir(w.path))
	}
	if err == nil {
		events, errs = notifier.Events, notifier.Errors
	} else {
		onNotifyError(err)
	}
	poll := time.NewTicker(w.interval)
	defer poll.Stop()
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			if settle == nil {
				settle = time.After(debounce)
			}
		case <-errs:
			// A lost notification is caught by the next poll.
		case <-settle:
			settle = nil
			w.check(onChange)
		case <-poll.C:
			w.check(onChange)
		}
	}
}

// check reads the file and calls onChange if its content changed. A file
// that cannot be read right now (in the middle of a swap) is looked at
// again at the next event or poll.
func (w *Watcher) check(onChange func()) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	sum := sha256.Sum256(data)
	if sum == w.last {
		return
	}
	w.last = sum
	onChange()
}
