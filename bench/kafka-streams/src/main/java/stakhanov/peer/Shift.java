package stakhanov.peer;

/** A decoded, valid shift event (docs/contract.md, shift event v1). */
final class Shift {
    String eventId, plantId, industry, section, role, workerId, unit;
    String shiftStart; // as sent
    long startSec; // Unix seconds (negative before 1970)
    int startNanos;
    int crewSize = 1;
    double shiftHours, output, scrap;

    double rate() {
        return output / shiftHours;
    }

    double scrapShare() {
        return output == 0 ? 0 : scrap / output;
    }

    /** The peer group (plant_id, role, unit). Identifiers hold no control characters, so U+001F separates them. */
    String group() {
        return plantId + '\u001f' + role + '\u001f' + unit;
    }
}
