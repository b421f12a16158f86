package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
)

// Error kinds, the keys of a report's error table.
const (
	KindTimeout       = "timeout"
	KindRefused       = "connection refused"
	KindReset         = "connection reset"
	KindClosed        = "connection closed early"
	KindPortExhausted = "port exhaustion (EADDRNOTAVAIL)"
	KindOther         = "other transport error"
)

// StatusKind names an HTTP error status: "http 503".
func StatusKind(code int) string { return "http " + strconv.Itoa(code) }

// KindOf maps a transport error to its kind by its value, not its text.
func KindOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return KindPortExhausted
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindClosed
	}
	return KindOther
}
