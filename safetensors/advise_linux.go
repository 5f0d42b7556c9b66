package safetensors

import "syscall"

const (
	adviceDontNeed = syscall.MADV_DONTNEED
	// advicePopulate is MADV_POPULATE_READ (Linux 5.14 and later; older
	// kernels refuse it and the pages fault in as they are read).
	advicePopulate = 22
)

// advise passes advice about mem to the kernel. Advice only: a failure
// changes speed or memory use, not results.
func advise(mem []byte, advice int) { _ = syscall.Madvise(mem, advice) }
