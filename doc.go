// Package xproc lets separately exec'd Go processes on one machine share
// typed memory and synchronise, the way Python's multiprocessing lets
// forked processes do: without a broker process, without serialising, and
// fast enough that the memory bus, not the library, is the limit.
//
// The work is done by its packages:
//
//	shm     segments: named or anonymous shared files with a validated header
//	sync    process-shared Mutex, ReentrantMutex, Semaphore, Event, Cond, Barrier
//	value   Value[T]: one T in shared memory, with a lock and lock-free atomics
//	array   Array[T]: n Ts in shared memory, for locked or hogwild access
//	queue   Queue: MPMC messages, leases that survive a dead consumer, Of[T], codecs
//	pipe    Pipe: a message connection between two processes, duplex or one-way
//	process Process: a registered Go function run in a worker process
//	pool    Pool: Map, Imap, Starmap, Apply over worker processes
//
// Import sync under an alias: xsync "github.com/xproc-go/xproc/sync".
//
// # From Python's multiprocessing
//
//	Python                              Go (xproc)
//	----------------------------------  ------------------------------------------------
//	Lock()                              xsync.Mutex (field) / xsync.CreateMutex(name)
//	lock.acquire() / release()          Lock() / Unlock()
//	lock.acquire(False)                 TryLock()
//	lock.acquire(timeout=t)             LockContext(ctx) with context.WithTimeout
//	RLock()                             xsync.ReentrantMutex / xsync.CreateReentrantMutex
//	Semaphore(n)                        Semaphore.Init(n, false) / xsync.CreateSemaphore(name, n, false)
//	BoundedSemaphore(n)                 Semaphore.Init(n, true)  / xsync.CreateSemaphore(name, n, true)
//	sem.acquire(timeout=t)              AcquireContext(ctx)
//	sem.release()                       Release() (ErrOverRelease when bounded)
//	sem.get_value()                     Value()
//	Event()                             xsync.Event / xsync.CreateEvent(name)
//	ev.set() / clear() / is_set()       Set() / Clear() / IsSet()
//	ev.wait(timeout=t)                  WaitContext(ctx)
//	Condition(lock)                     xsync.Cond used with an xsync.Mutex / xsync.CreateCond(name)
//	cond.wait(timeout=t)                WaitContext(ctx, &mu)
//	cond.wait_for(pred, timeout=t)      WaitFor(ctx, &mu, pred)
//	cond.notify(n) / notify_all()       Notify(n) / Signal() / Broadcast()
//	Barrier(n, action, timeout)         Barrier.Init(n, timeout) / xsync.CreateBarrier(name, n, timeout)
//	barrier.wait()                      Wait() / WaitFunc(ctx, action)
//	barrier.abort() / reset()           Abort() / Reset()
//	barrier.broken / n_waiting          Broken() / Waiting()
//	BrokenBarrierError                  xsync.ErrBroken
//	Value('d', 0.0)                     value.Create[float64](name, 0)
//	v.value (locked)                    v.Load() / v.Store(x) / v.Update(func(*T))
//	with v.get_lock(): ...              v.Lock(); ...; v.Unlock() (Load and Store work inside)
//	RawValue / Value(lock=False)        v.Ptr(); v.Add(d), v.CompareAndSwap(old, new)
//	(a struct of locks, set up once)    value.CreateFunc(name, init)
//	Array('d', 10)                      array.Create[float64](name, 10)
//	a[i], a[i] = x                      a.Get(i), a.Set(i, x)
//	with a.get_lock(): ...              a.Lock(); ...; a.Unlock() (Get and Set work inside)
//	RawArray / Array(lock=False)        a.Slice()
//	shared_memory.SharedMemory(name)    shm.Create / shm.Open
//	Queue(maxsize)                      queue.Create(name, queue.Options{MaxMessages: maxsize})
//	q.put(x) / q.get(timeout=t)         Put(ctx, msg) / Get(ctx)
//	SimpleQueue() / q.empty()           queue.Create(name, queue.Options{}) / Len() == 0
//	q.put_nowait(x) / q.get_nowait()    TryPut(msg) / TryGet()  (ErrFull, ErrEmpty)
//	q.qsize()                           Len()
//	JoinableQueue: task_done(), join()  TaskDone(), Join(ctx)
//	q.shutdown(immediate)               Shutdown(immediate)
//	SimpleQueue                         queue.Create(name, queue.Options{})
//	pickled objects                     queue.WithCodec[T](q, nil) (gob), queue.Of[T] (raw bytes)
//	Pipe() / Pipe(duplex=False)         pipe.Create(name, opts) + pipe.Open(name)
//	conn.send_bytes / recv_bytes        Send(ctx, b) / Recv(ctx)
//	conn.recv_bytes_into(buf)           RecvInto(ctx, buf)  (*ShortBufferError keeps it)
//	conn.poll(timeout)                  Poll(ctx)
//	EOFError                            io.EOF
//	Process(target=f, args=(x,))        process.Start(ctx, f, x), f registered at init
//	p.join() / p.exitcode               Wait(ctx) / ExitCode()
//	Process(target=f, args=(arr,))      process.Files(a.Segment().File()), array.OpenFile(process.File(0), n) in f
//	p.terminate() / kill() / is_alive() Terminate() / Kill() / Alive()
//	current_process() / cpu_count()     process.Current() / process.CPUCount()
//	parent_process() is not None        process.IsWorker()
//	Pool(n)                             pool.New(ctx, pool.Workers(n))
//	pool.map(f, xs)                     pool.Map(ctx, p, f, xs)
//	pool.imap / imap_unordered          pool.Imap / pool.ImapUnordered
//	pool.starmap(f, pairs)              pool.Starmap(ctx, p, f, pairs)
//	pool.apply_async(f, (x,)).get()     pool.ApplyAsync(ctx, p, f, x).Wait(ctx)
//	pool.map_async(f, xs).get()         pool.MapAsync(ctx, p, f, xs).Wait(ctx)
//	joblib Parallel(n_jobs=-1)          pool.New(ctx, pool.Workers(-1))
//	(a killed lock holder)              LockContext returns ErrOwnerDead to the next holder
//
// Each row is a runnable example in the documentation of the package
// that provides it.
//
// # Errors
//
// Errors are sentinels of each package (shm.ErrNotExist,
// xsync.ErrOwnerDead, ...), wrapped with the operation and the name,
// compared with errors.Is. shm.ErrExist, shm.ErrNotExist and
// shm.ErrClosed also match io/fs's ErrExist, ErrNotExist and ErrClosed,
// and the system's error stays in the chain (fs.ErrPermission). An
// argument out of range is an error wrapping ErrInvalid that names the
// call, the argument and the value given, never a panic; only misuse
// that Go's own sync treats as fatal (unlocking what is not locked) and
// an index out of range in an accessor that returns no error (Array.Get,
// as indexing a Go slice) panic.
//
// # Caveats
//
// Linux only for now (amd64 is tested; arm64 is built and vetted, not
// run, in CI); other systems build,
// and segment operations return shm.ErrNotSupported. All processes must
// share one kernel (one machine; containers with their own PID namespaces
// included). See the package documentation of shm, sync, queue and pool
// for what survives a killed process.
package xproc
