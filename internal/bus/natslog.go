package bus

import (
	"fmt"
	"log/slog"
	"sync"
)

// natsLogger passes the embedded server's log lines to slog (notices as
// debug: they are its start-up banner) and keeps the first fatal one, so
// a server that cannot start says why at once instead of never becoming
// ready.
type natsLogger struct {
	log   *slog.Logger
	once  sync.Once
	fatal chan string // receives the first fatal line
}

func newNATSLogger(log *slog.Logger) *natsLogger {
	return &natsLogger{log: log, fatal: make(chan string, 1)}
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}

// Fatalf records why the server cannot run; nats-server stops itself
// after the line (its own logger would exit the process).
func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.once.Do(func() { l.fatal <- msg })
}
