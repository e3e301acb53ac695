// Package plugins runs Strata storage engines out of process, over
// hashicorp/go-plugin and gRPC: a plugin is a program that serves one
// engine.Engine, and the broker (the host) sees it as any other engine.
//
// # Host side
//
// [Open] starts the plugin program, checks its handshake (magic cookie and
// [ProtocolVersion]), sends it the engine's directory and options in an
// Init call, and returns an engine.Engine whose logs forward every call.
// Every call carries the caller's context and a deadline: when the context
// has none, the default of [SettingCallTimeout] applies, so a hung plugin
// fails calls instead of hanging the broker. Closing the engine kills the
// plugin process.
//
// The engine supervises its process. When the process exits, is killed,
// or a call finds its connection gone, calls fail with [ErrUnavailable]
// (the broker answers KAFKA_STORAGE_ERROR) while the host logs the exit
// ("plugin exited; restarting") and starts the program again after
// [SettingRestartBackoff], doubling the wait for each exit in a row up to
// [SettingRestartBackoffMax]. Before calls reach the new process, every
// log open in the old one is opened again there, so its holder keeps using
// the same engine.Log; what the log then holds is what the plugin's engine
// recovered from its files.
//
// Linking this package in registers the engine-name scheme [Scheme]:
// engine.Open of "plugin:<name>" runs the program that the setting
// strata.plugins.<name>.path names ([PathSetting]), and "plugin:<path>" the
// program at path. The broker lets topics name only declared plugins.
//
// What crosses the boundary and what does not:
//
//   - Options.Log and Options.Settings travel in the Init call (settings
//     named strata.plugin.* and strata.plugins.* configure the host side
//     and stay there); FS, Logger and Now do not: the plugin gives its
//     engine the operating system's file system and a logger whose lines
//     go-plugin carries back to the host's Options.Logger at their level.
//   - Log.Offsets makes no call: it returns the offsets the plugin reported
//     with the last OpenLog, Append, Truncate or DeleteBefore, which is
//     exact because the host is the log's only writer. It keeps answering
//     while the plugin is down.
//   - Log.Read streams the batches in messages of a few hundred KiB; each
//     message becomes one chunk of the Records, memory the host owns (Pin
//     is nil, Release only drops it), so no read meets gRPC's message size
//     limit unless one batch alone is larger than 256 MiB.
//   - Appends copy each batch once, into memory the host shares with the
//     plugin run (a file created in /dev/shm and unlinked at once, which
//     the plugin maps through /proc/<host pid>/fd/<n>; a restarted plugin
//     gets a new one, and killing or closing the engine unmaps it). A
//     request names where its batches lie, and travels over a lane: a
//     pair of pipes serving one call at a time, so an append costs the
//     plugin's Append calls plus a write and a read on each side rather
//     than a gRPC call. The plugin appends straight from the shared
//     memory, which Append's contract (it does not retain the batch) makes
//     safe to reuse once the call is over; a call the host gave up on
//     keeps its memory until the plugin has finished with it. An append
//     that finds no room there (more than the region's 8 MiB in flight,
//     or a batch larger than that), or no lane to spare, or whose plugin
//     cannot map the memory (not Linux, no /dev/shm, another PID
//     namespace), makes an Append call, with the bytes in the message
//     when they are not in shared memory.
//   - [Log.AppendBatches] (engine.BatchAppender) appends several batches
//     in one round trip, up to a few MiB each; engine.AppendBatches uses
//     it.
//   - [Engine.SetFailWrites] is a fault-injection hook for tests: the
//     plugin fails its engine's writes through the FS it gave it (and the
//     engine's own SetFailWrites(bool), if it has one).
//   - A plugin process dies with its host (on Linux, through the
//     parent-death signal), so a crashed broker leaves no plugin holding
//     its files.
//
// Errors that wrap an engine sentinel in the plugin wrap the same sentinel
// in the host (errors.Is holds across the boundary). A plugin that died or
// cannot be reached makes calls fail with an error wrapping
// [ErrUnavailable] and no engine sentinel, which the broker maps to
// KAFKA_STORAGE_ERROR like any I/O failure.
//
// # Plugin side
//
// A plugin author calls [Serve] from main with an engine.OpenFunc; the
// plugin opens its engine when the host's Init call arrives:
//
//	func main() { plugins.Serve(myengine.Open) }
//
// examples/minimal is a complete in-memory engine served this way, and
// examples/builtin serves any engine linked into Strata by name.
//
// The price of the boundary is measured beside the engines it serves, as
// BenchmarkEngine/plugin-<engine>/<op> in package bench (figures in
// bench/README.md).
//
// # The service
//
// enginepb/engine.proto defines it; the Go code beside it is generated
// with `make proto`, which installs protoc (Debian's protobuf-compiler)
// if missing and protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2
// into bin/, then runs from the repository root:
//
//	protoc -I plugins/enginepb --go_out=paths=source_relative:plugins/enginepb --go-grpc_out=paths=source_relative:plugins/enginepb plugins/enginepb/engine.proto
package plugins
