package main

import (
	"fmt"
	"syscall"

	"agentd/web"
)

// fileReserve is the descriptors kept for everything but connections and the database: standard
// streams, the runtime's poller, the listening socket, DNS look-ups, the process metrics reading
// /proc. It is several times what a node uses.
const fileReserve = 64

// descriptorLimit returns the process's RLIMIT_NOFILE soft limit (Go raises it to the hard
// limit at start on Linux), or 0 when it cannot be read.
func descriptorLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, 1<<30)) // "unlimited" is a huge number; any cap far below it will do
}

// connBudget is the node's default connection cap: the descriptor limit less what the database
// (the pool's connections and the LISTEN connection), files and refusals in progress need, so
// that a node with every connection taken still reaches its database and answers /readyz.
func connBudget(nofile, dbConns int) (int, error) {
	reserve := dbConns + 1 + fileReserve + web.MaxRefusing
	if nofile-reserve < 1 {
		return 0, fmt.Errorf("the descriptor limit (RLIMIT_NOFILE %d) leaves no room for connections after the %d reserved for the database and files: raise it (ulimit -n) or set AGENTD_MAX_CONNS", nofile, reserve)
	}
	return nofile - reserve, nil
}
