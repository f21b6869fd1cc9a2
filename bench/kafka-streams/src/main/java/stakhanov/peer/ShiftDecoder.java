package stakhanov.peer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import java.io.IOException;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.regex.Pattern;

/**
 * Decodes and validates one shift event v1 (docs/contract.md) with Jackson's
 * streaming parser. Anything the contract calls a bad record throws
 * {@link Malformed}; the reasons are coarser than the Go decoder's, since the
 * peer only counts bad records (Stakhanov sends them to a dead-letter topic).
 */
final class ShiftDecoder {
    static final class Malformed extends Exception {
        Malformed(String reason) {
            super(reason, null, false, false); // no stack trace: this is a hot path
        }
    }

    static final int MAX_VALUE_BYTES = 1 << 20;
    static final int MAX_EVENT_ID_LEN = 128;
    static final int MAX_ID_LEN = 256;
    static final int MAX_CREW = 10_000;
    static final double MAX_OUTPUT = 1e12;
    /** [1900-01-01, 2100-01-01) in Unix seconds. */
    static final long MIN_TIME = -2_208_988_800L, MAX_TIME = 4_102_444_800L;

    private static final Pattern RFC3339 =
            Pattern.compile("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})");

    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            // the root object is depth 1; ignored fields may nest 32 deep inside it
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(33).build())
            .build();

    private static Malformed bad(String reason) {
        return new Malformed(reason);
    }

    static Shift decode(byte[] v) throws Malformed {
        if (v == null || v.length == 0) throw bad("empty_message");
        if (v.length > MAX_VALUE_BYTES) throw bad("too_large");
        // Jackson skips a UTF-8 byte order mark; the contract does not allow one
        if (v.length >= 3 && (v[0] & 0xff) == 0xef && (v[1] & 0xff) == 0xbb && (v[2] & 0xff) == 0xbf) {
            throw bad("invalid_json");
        }
        try (JsonParser p = JSON.createParser(v)) {
            return object(p);
        } catch (IOException | RuntimeException e) { // syntax, duplicate key, depth, bad UTF-8
            throw bad("invalid_json");
        }
    }

    private static Shift object(JsonParser p) throws IOException, Malformed {
        if (p.nextToken() != JsonToken.START_OBJECT) throw bad("not_object");
        Shift s = new Shift();
        double crew = 1;
        boolean hours = false, output = false;
        String start = null;
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken vt = p.nextToken();
            switch (name) {
                case "event_id" -> s.eventId = id(p, vt, MAX_EVENT_ID_LEN);
                case "plant_id" -> s.plantId = id(p, vt, MAX_ID_LEN);
                case "industry" -> s.industry = id(p, vt, MAX_ID_LEN);
                case "section" -> s.section = id(p, vt, MAX_ID_LEN);
                case "role" -> s.role = id(p, vt, MAX_ID_LEN);
                case "worker_id" -> s.workerId = id(p, vt, MAX_ID_LEN);
                case "unit" -> s.unit = id(p, vt, MAX_ID_LEN);
                case "shift_start" -> {
                    if (vt != JsonToken.VALUE_STRING) throw bad("wrong_type");
                    start = p.getText();
                }
                case "crew_size" -> crew = number(p, vt);
                case "shift_hours" -> {
                    s.shiftHours = number(p, vt);
                    hours = true;
                }
                case "output" -> {
                    s.output = number(p, vt);
                    output = true;
                }
                case "scrap" -> s.scrap = number(p, vt);
                default -> p.skipChildren();
            }
        }
        if (t != JsonToken.END_OBJECT) throw bad("truncated_json");
        if (p.nextToken() != null) throw bad("trailing_data");

        if (s.eventId == null || s.plantId == null || s.industry == null || s.role == null
                || s.workerId == null || s.unit == null || start == null || !hours || !output) {
            throw bad("missing_field");
        }
        if (s.eventId.isEmpty() || s.plantId.isEmpty() || s.industry.isEmpty() || s.role.isEmpty()
                || s.workerId.isEmpty() || s.unit.isEmpty()) {
            throw bad("empty_field");
        }
        if (crew != Math.rint(crew)) throw bad("wrong_type");
        if (crew < 1 || crew > MAX_CREW) throw bad("crew_size_out_of_range");
        s.crewSize = (int) crew;
        if (!RFC3339.matcher(start).matches()) throw bad("bad_timestamp");
        OffsetDateTime ts;
        try {
            ts = OffsetDateTime.parse(start);
        } catch (DateTimeParseException e) {
            throw bad("bad_timestamp");
        }
        s.startSec = ts.toEpochSecond();
        if (s.startSec < MIN_TIME || s.startSec >= MAX_TIME) throw bad("timestamp_out_of_range");
        s.shiftStart = start;
        s.startNanos = ts.getNano();
        if (!(s.shiftHours > 0 && s.shiftHours <= 24)) throw bad("shift_hours_out_of_range");
        if (s.output < 0) throw bad("negative_output");
        if (s.output > MAX_OUTPUT) throw bad("output_out_of_range");
        if (s.scrap < 0) throw bad("negative_scrap");
        if (s.scrap > s.output) throw bad("scrap_above_output");
        return s;
    }

    private static double number(JsonParser p, JsonToken t) throws IOException, Malformed {
        if (t != JsonToken.VALUE_NUMBER_INT && t != JsonToken.VALUE_NUMBER_FLOAT) throw bad("wrong_type");
        double d = p.getDoubleValue();
        if (!Double.isFinite(d)) throw bad("number_out_of_range");
        return d;
    }

    /** An identifier: a string of at most max code points, no control characters, no lone surrogates. */
    private static String id(JsonParser p, JsonToken t, int max) throws IOException, Malformed {
        if (t != JsonToken.VALUE_STRING) throw bad("wrong_type");
        String s = p.getText();
        int n = s.length();
        if (n > max && s.codePointCount(0, n) > max) throw bad("field_too_long");
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) throw bad("control_character");
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                } else {
                    throw bad("invalid_utf8");
                }
            }
        }
        return s;
    }
}
