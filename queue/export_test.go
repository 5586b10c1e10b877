package queue

// Sleepers returns how many callers are in the sleeping path of q's ring,
// waiting for messages or for room.
func Sleepers(q *Queue) int {
	c := q.r.Control()
	return int(c.DataWaiters.Load() + c.SpaceWaiters.Load())
}
