package stakhanov.peer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.HexFormat;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * The norm and record rules of docs/contract.md for one stream task (one input
 * partition), with all state in the task's state stores:
 *
 * <ul>
 *   <li>{@code windows} (KeyValueStore): per peer group, its shifts of the last retention span
 *       ({@link Window}); under the key "" the task's stream time;
 *   <li>{@code dedup} (WindowStore, retention = the retention span): event ids seen, at their
 *       shift start, for dropping repeats.
 * </ul>
 *
 * Event time is the shift's {@code shift_start}; stream time is the largest start accepted in the
 * task, as in Stakhanov. Kafka Streams' own record timestamps are not used for the rules: they
 * cannot be negative, and the simulated plants work in 1935.
 */
final class RulesProcessor implements Processor<byte[], byte[], String, byte[]> {
    static final String WINDOWS = "windows", DEDUP = "dedup";
    static final String OUT_SINK = "out", ALERTS_SINK = "alerts";

    static final long WINDOW = 28 * 86400L;
    static final long LATENESS = 6 * 3600L;
    static final long RETENTION = WINDOW + LATENESS + 86400L;
    static final int RECORD_MIN_SHIFTS = 20;
    static final double RECORD_RATIO = 3.0;
    static final double SUSPECT_SCRAP_SHARE = 0.05;
    static final double TOLERANCE = 0.10;

    /** Dedup-store timestamps are milliseconds since 1900-01-01: the window store wants them ≥ 0. */
    static final long EPOCH_1900 = ShiftDecoder.MIN_TIME;

    private static final long NO_TIME = Long.MIN_VALUE;
    private static final String STREAM_TIME_KEY = "";
    private static final long MAX_DEDUP_TS = (ShiftDecoder.MAX_TIME - EPOCH_1900) * 1000;
    private static final JsonFactory JSON = new JsonFactory();

    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> windows;
    private WindowStore<String, Long> dedup;
    private long streamTime;
    private double[] scratch = new double[1024];
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream(512);

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.windows = context.getStateStore(WINDOWS);
        this.dedup = context.getStateStore(DEDUP);
        byte[] st = windows.get(STREAM_TIME_KEY);
        streamTime = st == null ? NO_TIME : ByteBuffer.wrap(st).getLong();
    }

    @Override
    public void process(Record<byte[], byte[]> rec) {
        Stats.firstRecord();
        Stats.MESSAGES.increment();
        Shift s;
        try {
            s = ShiftDecoder.decode(rec.value());
        } catch (ShiftDecoder.Malformed e) {
            Stats.MALFORMED.increment();
            return;
        }
        long start = s.startSec;
        if (streamTime != NO_TIME && seen(s.eventId)) {
            Stats.DUPLICATES.increment();
            return;
        }
        boolean late = isLate(start);
        String key = s.group();
        byte[] stored = windows.get(key);
        Window w = stored == null ? null : Window.decode(stored);
        Window.Norm norm = Window.Norm.EMPTY;
        if (w != null) {
            long from = start - WINDOW;
            if (late) from = Math.max(from, streamTime - RETENTION); // what a restored task would hold
            if (scratch.length < w.n) scratch = new double[w.n * 2];
            norm = w.norm(from, start, TOLERANCE, scratch);
        }
        double rate = s.rate(), scrapShare = s.scrapShare();
        double ratio = norm.median() > 0 ? rate / norm.median() : Double.NaN;
        String flag = null;
        if (!late && norm.count() >= RECORD_MIN_SHIFTS && ratio >= RECORD_RATIO) {
            flag = scrapShare > SUSPECT_SCRAP_SHARE ? "suspect_record" : "record_shift";
        }
        context.forward(new Record<>(s.plantId, enriched(s, rate, scrapShare, norm, ratio, late, flag), rec.timestamp()), OUT_SINK);
        if (flag != null) {
            (flag.equals("record_shift") ? Stats.RECORDS : Stats.SUSPECTS).increment();
            context.forward(new Record<>(s.plantId, alert(s, flag, rate, scrapShare, norm, ratio), rec.timestamp()), ALERTS_SINK);
        }
        dedup.put(s.eventId, start, (start - EPOCH_1900) * 1000);
        if (late) {
            Stats.LATE.increment();
            return;
        }
        if (w == null) w = Window.empty();
        w.insert(start, rate);
        if (start > streamTime) {
            streamTime = start;
            windows.put(STREAM_TIME_KEY, ByteBuffer.allocate(8).putLong(streamTime).array());
        }
        w.pruneBefore(streamTime - RETENTION); // no later shift can reach back further
        windows.put(key, w.encode());
        Stats.ACCEPTED.increment();
    }

    /** A shift is late when its day has closed (day end + lateness ≤ stream time) or it starts more than one window before stream time. */
    private boolean isLate(long start) {
        if (streamTime == NO_TIME) return false;
        long dayEnd = (Math.floorDiv(start, 86400L) + 1) * 86400L;
        return dayEnd + LATENESS <= streamTime || start < streamTime - WINDOW;
    }

    /** Was eventId seen with a shift start within the retention span of stream time? */
    private boolean seen(String eventId) {
        long from = Math.max(0, (streamTime - RETENTION - EPOCH_1900) * 1000);
        try (WindowStoreIterator<Long> it = dedup.fetch(eventId, from, MAX_DEDUP_TS)) {
            return it.hasNext();
        }
    }

    private byte[] enriched(Shift s, double rate, double scrapShare, Window.Norm norm, double ratio, boolean late, String flag) {
        buf.reset();
        try (JsonGenerator g = JSON.createGenerator(buf)) {
            g.writeStartObject();
            g.writeStringField("event_id", s.eventId);
            g.writeStringField("plant_id", s.plantId);
            g.writeStringField("industry", s.industry);
            g.writeStringField("role", s.role);
            g.writeStringField("unit", s.unit);
            g.writeStringField("worker_id", s.workerId);
            g.writeStringField("shift_start", s.shiftStart);
            number(g, "rate", rate);
            number(g, "norm_rate", norm.median());
            g.writeNumberField("norm_count", norm.count());
            number(g, "ratio", ratio);
            number(g, "scrap_share", scrapShare);
            g.writeBooleanField("late", late);
            if (flag == null) g.writeNullField("flag");
            else g.writeStringField("flag", flag);
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return buf.toByteArray();
    }

    /** The alert message of docs/contract.md, fields in its order. */
    private byte[] alert(Shift s, String type, double rate, double scrapShare, Window.Norm norm, double ratio) {
        // the shift's end; the cast truncates as Go's time.Duration(h * float64(time.Hour)) does
        Instant end = Instant.ofEpochSecond(s.startSec, s.startNanos).plusNanos((long) (s.shiftHours * 3.6e12));
        buf.reset();
        try (JsonGenerator g = JSON.createGenerator(buf)) {
            g.writeStartObject();
            g.writeStringField("alert_id", alertId(type, s.eventId));
            g.writeStringField("type", type);
            g.writeStringField("plant_id", s.plantId);
            g.writeStringField("industry", s.industry);
            g.writeStringField("role", s.role);
            g.writeStringField("unit", s.unit);
            g.writeStringField("worker_id", s.workerId);
            g.writeStringField("event_id", s.eventId);
            g.writeStringField("day", LocalDate.ofInstant(Instant.ofEpochSecond(s.startSec), ZoneOffset.UTC).toString());
            number(g, "rate", rate);
            number(g, "norm_rate", norm.median());
            number(g, "ratio", ratio);
            number(g, "scrap_share", scrapShare);
            g.writeNumberField("group_size", norm.count());
            number(g, "bulk_share", norm.bulk());
            g.writeStringField("detected_at", end.toString());
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return buf.toByteArray();
    }

    private static void number(JsonGenerator g, String name, double v) throws IOException {
        if (Double.isFinite(v)) g.writeNumberField(name, v);
        else g.writeNullField(name);
    }

    /** Stakhanov's alert id: the first 16 bytes, hex, of SHA-256 over the length-prefixed parts. */
    static String alertId(String... parts) {
        MessageDigest h;
        try {
            h = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        for (String p : parts) {
            byte[] b = p.getBytes(StandardCharsets.UTF_8);
            h.update(new byte[] {(byte) (b.length >>> 24), (byte) (b.length >>> 16), (byte) (b.length >>> 8), (byte) b.length});
            h.update(b);
        }
        byte[] sum = h.digest();
        return HexFormat.of().formatHex(sum, 0, 16);
    }
}
