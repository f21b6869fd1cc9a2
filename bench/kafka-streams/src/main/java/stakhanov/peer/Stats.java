package stakhanov.peer;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of this JVM, for progress and the final report. They are not state:
 * a task that is replayed after a crash counts its records again.
 */
final class Stats {
    static final LongAdder MESSAGES = new LongAdder();
    static final LongAdder MALFORMED = new LongAdder();
    static final LongAdder DUPLICATES = new LongAdder();
    static final LongAdder LATE = new LongAdder();
    static final LongAdder ACCEPTED = new LongAdder();
    static final LongAdder RECORDS = new LongAdder();
    static final LongAdder SUSPECTS = new LongAdder();

    private static final AtomicLong FIRST = new AtomicLong();
    private static volatile boolean started;

    /** Marks the time the first record reached the processor. */
    static void firstRecord() {
        if (!started) {
            FIRST.compareAndSet(0, System.nanoTime());
            started = true;
        }
    }

    /** System.nanoTime() of the first record, 0 before it. */
    static long firstNanos() {
        return FIRST.get();
    }

    private Stats() {}
}
