package asr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// wsSession is what both vendors' sessions share: a WebSocket whose reader goroutine decodes
// the vendor's messages, and the end-of-stream bookkeeping.
type wsSession struct {
	conn   *websocket.Conn
	cancel context.CancelFunc
	ctx    context.Context // the reader's; ends on Close

	wmu    sync.Mutex // writes
	once   sync.Once
	done   chan struct{}
	err    error
	closed atomic.Bool // by Close: the end is ErrClosed
}

func newWSSession(conn *websocket.Conn) *wsSession {
	ctx, cancel := context.WithCancel(context.Background())
	conn.SetReadLimit(1 << 20)
	return &wsSession{conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// read runs the reader: handle decodes each message and returns done=true at the vendor's last
// message (or an error). A close by the vendor without its last message is an error.
func (w *wsSession) read(handle func(typ websocket.MessageType, b []byte) (done bool, err error)) {
	go func() {
		for {
			typ, b, err := w.conn.Read(w.ctx)
			if err != nil {
				w.end(err)
				return
			}
			last, err := handle(typ, b)
			if err != nil || last {
				w.end(err)
				return
			}
		}
	}()
}

// end records how the stream ended (the first reason wins) and closes the socket.
func (w *wsSession) end(err error) {
	w.once.Do(func() {
		if w.closed.Load() {
			err = ErrClosed
		}
		w.err = err
		w.cancel()
		_ = w.conn.Close(websocket.StatusNormalClosure, "")
		close(w.done)
	})
}

func (w *wsSession) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	select {
	case <-w.done:
		return errors.Join(errors.New("asr stream ended"), w.err)
	default:
	}
	return w.conn.Write(ctx, typ, b)
}

// finish waits for the reader to end after the end marker was sent.
func (w *wsSession) finish(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		w.Close()
		return ctx.Err()
	}
}

func (w *wsSession) Done() <-chan struct{} { return w.done }

func (w *wsSession) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Close drops the stream and waits for the reader.
func (w *wsSession) Close() {
	w.closed.Store(true)
	w.cancel()
	_ = w.conn.CloseNow()
	<-w.done
}
