// Package ring is the byte ring that carries the messages of package queue
// (many producers, many consumers) and, one per direction, of package pipe
// (one producer, one consumer). It lives in shared memory; every process
// that maps it may produce and consume, and any of them may be killed at
// any instruction.
//
// # Layout
//
// The ring is a control block followed by a power-of-two number of bytes
// of records. Positions are 64-bit byte counters that never wrap; the
// index of a position is position & (size-1). Records are 8-byte aligned
// and never cross the end of the ring: a record that would is preceded by
// a padding record running to the end.
//
//	control block (1024 bytes, one group of words per 128-byte line)
//	  producers: lock, tail, head, put count, last record, void count
//	  consumers: read cursor, returned count, removed count
//	  wake-ups:  data seq + waiters, space seq + waiters
//	  queue:     flags, last scan, task-done count, discarded count, join seq
//
//	records (size bytes)
//	  head            read cursor                 tail
//	   |                  |                         |
//	   v                  v                         v
//	  +------+--------+--------+---------+-------+-----------------+--+
//	  | DONE | LEASED | READY  | WRITING | READY |   free space    |P |
//	  +------+--------+--------+---------+-------+-----------------+--+
//	  freed in batches     claimed by consumers   claimed by producers
//	  (CAS on the head)    (CAS on the state)     (under the lock)
//
//	record: 32-byte header, then the payload, padded to 8 bytes
//	  word 0  state: bits 30-31 say which, the other 62 bits say whose
//	            00 WRITING  owner.ID of the producer
//	            01 READY    tag of the record's position (pos>>3, spread)
//	            10 LEASED   owner.ID of the consumer
//	            11 DONE     tag of the record's position
//	  word 1  payload length (bits 0-31), deliveries (32-47), flags (48-63)
//	  word 2  sequence number: 1 for the first message ever claimed, ...
//	  word 3  aux: the consumer that died holding the record, or (pipe)
//	          the total length of a message sent in chunks
//
//	states:  WRITING --commit--> READY --claim--> LEASED --ack--> DONE
//	            |                  ^                 |
//	            +--abort/dead--> DONE   <--nak/dead--+
//
// # Invariants
//
// head <= read cursor <= tail <= head + size at every instant. Producers
// hold the lock (an xsync.Mutex in the control block, so a dead holder is
// taken over) while they write a record's header and move the tail; so a
// record is never published without its owner in its state word, and
// free space needs no clearing. Only a lock holder reuses freed space, so
// records below the head keep their contents while a lock holder walks
// them. The head moves by CAS, over DONE records below the read cursor:
// consumers move it in batches (a sixteenth of the ring, at most 64 KiB)
// over the records they just read, still in their cache; producers short
// of room move it too.
//
// Consumers claim the READY record at the read cursor with one CAS of its
// state word, from READY|tag(pos) to LEASED|self, then advance the read
// cursor (anyone who finds a claimed record at the cursor helps). The tag
// names the record's position, mixed with a random salt of the ring: a
// state word equal to READY|tag(pos) can only have been written by the
// commit of the record at pos, so a consumer reads it without reading the
// tail (the producers' cache line stays with the producers), and a
// consumer delayed between reading the cursor and its CAS cannot claim a
// record of a later lap at the same index (the ABA problem). Only when
// the state word is something else does a consumer read the tail, to
// tell an empty ring from a record in progress.
//
// A producer writes the header with plain stores and commits with one
// atomic store of the state word; the consumer's atomic load of that word
// makes the header and payload visible. A consumer ends its claim with a release store of
// DONE. Wake-ups go through one futex word per direction (data for
// consumers, space for producers) with a count of sleepers beside it: a
// producer makes a system call only if a consumer may sleep, and a
// consumer only if a producer may.
//
// A pipe's rings have a single producer (one end, whose goroutines the
// pipe serialises): it takes no lock and publishes the tail with a
// release store.
//
// # Process death
//
// The owner of a WRITING or LEASED record is in the word that claimed it.
// A waiter that has waited CheckInterval (and, at most as often, any
// process) scans [head, tail) under the lock: a WRITING record whose
// producer is dead becomes DONE (void: it never was a message), and a
// LEASED record whose consumer is dead goes back to READY, with its
// delivery count kept, a flag saying its consumer died and that
// consumer's identity in word 3. A READY record below the read cursor is
// "returned"; the returned count tells consumers to look for one before
// taking from the cursor. A lock holder that dies is taken over by the
// next producer (xsync.Mutex), which repairs the put count from the last
// record's header.
//
// # Trust
//
// Nothing read from the ring is used as an index or a length without a
// bounds check: a record's length must be a multiple of 8, hold its
// header, fit before the end of the ring and, unless it is padding, carry
// at most the maximum payload. A header that fails a check at a position
// that is still current is ErrCorrupt.
//
// The design is Agrona's ManyToOneRingBuffer (claim, then commit by a
// release store of the header) made multi-consumer, with a producer lock
// in place of the CAS on the tail: a CAS on the tail leaves a window,
// between the CAS and the header store, in which a killed producer leaves
// a claimed record with no owner to check, and the lock (whose word holds
// its owner) closes it. Tagged state words follow Vyukov's bounded MPMC
// queue, whose per-slot sequence numbers solve the same ABA problem.
package ring
