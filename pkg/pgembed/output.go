package pgembed

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

const (
	// tailLines is how many lines of server output errors quote.
	tailLines = 20
	// maxLine bounds a line kept in memory while waiting for its newline.
	maxLine = 64 << 10
)

// outputLog is an io.Writer for the output of a PostgreSQL program. It logs
// every line at debug level and keeps the last lines for error messages.
type outputLog struct {
	logger *slog.Logger

	mu      sync.Mutex
	partial bytes.Buffer
	tail    []string // the last tailLines lines, oldest first
}

func newOutputLog(logger *slog.Logger, program string) *outputLog {
	return &outputLog{logger: logger.With(slog.String("program", program))}
}

// Write implements io.Writer.
func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial.Write(p)
	for {
		i := bytes.IndexByte(o.partial.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(o.partial.Next(i + 1))
		o.addLocked(line[:i])
	}
	if o.partial.Len() > maxLine {
		o.addLocked(string(o.partial.Next(o.partial.Len())))
	}
	return len(p), nil
}

// flush records a final line that did not end with a newline.
func (o *outputLog) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.partial.Len() > 0 {
		o.addLocked(string(o.partial.Next(o.partial.Len())))
	}
}

func (o *outputLog) addLocked(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	o.logger.LogAttrs(context.Background(), slog.LevelDebug, line)
	if len(o.tail) == tailLines {
		o.tail = append(o.tail[:0], o.tail[1:]...)
	}
	o.tail = append(o.tail, line)
}

// Tail returns the last lines of output, or a placeholder when there was
// none, for use in error messages.
func (o *outputLog) Tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.tail) == 0 {
		return "(no output)"
	}
	return strings.Join(o.tail, "\n")
}
