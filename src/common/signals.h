// SIGINT and SIGTERM (and for daemons SIGHUP) as a readable descriptor for the event loop, not
// a handler (STYLE.md: handlers only set flags; here there is not even a handler). Call before
// starting threads: they inherit the blocked mask, so the signals reach only the descriptor.
#pragma once

namespace iothub {

// Blocks SIGINT and SIGTERM in the calling thread and returns a non-blocking signalfd that
// becomes readable when one arrives, or -1 when the kernel refuses one. Ignores SIGPIPE (a
// peer that went away is an error value on the write, not a signal).
int BlockTerminationSignals();

// The same with SIGHUP too (a daemon's "reload your configuration").
int BlockDaemonSignals();

// The next signal waiting on a descriptor from the functions above (SIGTERM, ...), or 0 when
// none is waiting.
int ReadSignal(int signal_fd);

}  // namespace iothub
