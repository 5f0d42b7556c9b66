package tensor

import "syscall"

// osYield gives the processor to another runnable thread (sched_yield(2)),
// so that a spinning thread lets a preempted partner finish its item.
func osYield() { syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
