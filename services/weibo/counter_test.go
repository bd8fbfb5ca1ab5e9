package weibo_test

import "sync/atomic"

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int64 { return 10_000_000 + c.n.Add(1) }
