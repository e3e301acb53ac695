package plugins

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// ErrUnavailable is wrapped by the errors of calls that did not reach a
// working plugin: the process died, was killed, or closed the connection.
// It wraps no engine sentinel, so the broker treats it as an I/O failure
// (KAFKA_STORAGE_ERROR).
var ErrUnavailable = errors.New("plugins: plugin unavailable")

// sentinels pairs every engine sentinel with its wire name and status code.
var sentinels = []struct {
	err  error
	s    enginepb.Sentinel
	code codes.Code
}{
	{engine.ErrOffsetOutOfRange, enginepb.Sentinel_SENTINEL_OFFSET_OUT_OF_RANGE, codes.OutOfRange},
	{engine.ErrClosed, enginepb.Sentinel_SENTINEL_CLOSED, codes.FailedPrecondition},
	{engine.ErrCorrupt, enginepb.Sentinel_SENTINEL_CORRUPT, codes.DataLoss},
	{engine.ErrNonContiguous, enginepb.Sentinel_SENTINEL_NON_CONTIGUOUS, codes.InvalidArgument},
	{engine.ErrInvalidBatch, enginepb.Sentinel_SENTINEL_INVALID_BATCH, codes.InvalidArgument},
	{engine.ErrLogFailed, enginepb.Sentinel_SENTINEL_LOG_FAILED, codes.Aborted},
	{engine.ErrLogOpen, enginepb.Sentinel_SENTINEL_LOG_OPEN, codes.AlreadyExists},
	{engine.ErrLogNotFound, enginepb.Sentinel_SENTINEL_LOG_NOT_FOUND, codes.NotFound},
	{engine.ErrUnknownEngine, enginepb.Sentinel_SENTINEL_UNKNOWN_ENGINE, codes.NotFound},
	{engine.ErrInvalidOptions, enginepb.Sentinel_SENTINEL_INVALID_OPTIONS, codes.InvalidArgument},
}

// toStatus turns an error of the plugin's engine into a gRPC status error
// that names the sentinel it wraps, with extra details appended.
func toStatus(err error, extra ...protoadapt.MessageV1) error {
	if err == nil {
		return nil
	}
	code, s := codes.Unknown, enginepb.Sentinel_SENTINEL_NONE
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	for _, e := range sentinels {
		if errors.Is(err, e.err) {
			code, s = e.code, e.s
			break
		}
	}
	st := status.New(code, err.Error())
	details := append([]protoadapt.MessageV1{&enginepb.ErrorDetail{Sentinel: s, Message: err.Error()}}, extra...)
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// remoteError is an error of the plugin's engine as the host sees it: the
// plugin's text, wrapping the engine sentinel it wrapped there.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return "plugin: " + e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// fromStatus turns the error of a call (method) into the error the host
// returns: the engine sentinel the plugin named, the caller's context
// error, or ErrUnavailable when the plugin could not be reached.
func fromStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("plugins: %s: %w", method, err)
	}
	for _, d := range st.Details() {
		if det, ok := d.(*enginepb.ErrorDetail); ok {
			re := &remoteError{msg: det.GetMessage()}
			for _, e := range sentinels {
				if e.s == det.GetSentinel() {
					re.sentinel = e.err
				}
			}
			if re.sentinel == nil {
				// The plugin's own I/O error; keep the context
				// error if that is what it was.
				switch st.Code() {
				case codes.Canceled:
					re.sentinel = context.Canceled
				case codes.DeadlineExceeded:
					re.sentinel = context.DeadlineExceeded
				}
			}
			return re
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("plugins: %s: %w", method, cerr)
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugins: %s: %w", method, context.DeadlineExceeded)
	case codes.Unavailable, codes.Canceled:
		// Canceled with the caller's context live: the connection
		// was closed under the call (the plugin exited).
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, method, st.Message())
	}
	return fmt.Errorf("plugins: %s: %s: %s", method, st.Code(), st.Message())
}

func grpcStatus(err error) (*status.Status, bool) { return status.FromError(err) }
