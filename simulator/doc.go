// Package simulator generates a deterministic stream of shift events (the
// Kafka messages the pipeline consumes) together with the ground truth of
// what the pipeline must find in it.
//
// The model. Plants of several industries (coal, metallurgy, automotive,
// machine-building, chemical, power, textile) each run 1–3 peer groups of
// one role and unit (hewer/t at a mine, lathe-operator/parts and
// assembly-brigade/cars at a car works, weaver/m at a mill, …), each of
// WorkersPerGroup workers. Every worker works one shift a day (6 h in the
// mines and chemical works, 8 h elsewhere) in a slot that rotates weekly,
// resting one day in six, staggered, and missing a few days by chance. A
// shift's rate is the group's base rate (the role's typical rate × a plant
// factor in [0.9, 1.1]) × the worker's skill in [0.86, 1.14] × the day's
// luck in [0.95, 1.05], and its output that rate × the shift's hours,
// rounded to the unit's precision (which moves a rate by < 0.5 %). Scrap,
// where a trade reports it, is at most 2 % of output.
//
// Planted on top, deterministically from the seed: record shifts (4–8× the
// base rate, scrap ≤ 1 %, mostly with helpers; among them Stakhanov's 102 t
// in the 6 h night shift of 1935-08-30 at tsentralnaya-irmino, against a norm
// of 14 t), suspect records (the same with 10–40 % scrap), pace-setting
// shops (1–2 workers at 1.8–2.3× the day's median while the rest hold one
// level within ±4 %), duplicate re-sends, late reports and malformed
// messages of 36 kinds, which between them draw every reason code of package
// shift but too_large.
//
// And near misses, so that a threshold that drifts shows: shifts at
// 2.8–2.99× and 3.0–3.2× their norm, records with 4.9–5.0 % and 5.01–5.2 %
// scrap, would-be records where the window holds exactly 19 and 20 shifts,
// workers at 1.4–1.49× and 1.5–1.6× the day's median, pace-setting shops of
// exactly 7 and 8 workers, and shops of 10 workers of whom exactly 6 or 7
// hold the common level. The kinds the run's plants can hold come in turn,
// and each pass through them takes the halves of their bands nearer to the
// threshold, then those farther away. A near miss is placed against the norm exactly as the
// pipeline computes it (see Emit order), every value is checked after the
// output and scrap are rounded, and one that misses its band is dropped,
// never listed. See Truth for what each list guarantees.
//
// Why no alert arises unplanted. Let b be a group's base rate and ε = 0.5 %
// the rounding error. An ordinary rate lies in [0.817b, 1.197b](1 ± ε).
// Planted shifts, whatever their rate, are far fewer than half of any
// window, so a window's median lies in that range too, as does an ordinary
// day's. An ordinary worker reaches at most 1.197/0.817 · (1+ε)/(1−ε)
// < 1.48× an ordinary day's median (pace-setter: 1.5×), and an ordinary
// shift as much of a window's median (record: 3×). A planted shop holds
// its level within the ordinary range; its pace-setters, at most
// 2.3 · 1.04 · (1+ε)² b, and its other planted workers (0.75–1.6× its
// median) stay below 2.98× a window median of at least 0.817b(1−ε). A
// planted record is at least 4b(1−ε) against a window median of at most
// 1.197b(1+ε): a ratio above 3.3. Records are planted only once the group
// has 20 shifts in the days of the window before the record's day. Near
// misses of the record rule, and the verdict of every day, are not left to
// these bounds: the simulator computes them the way the rules do.
//
// Emit order. Messages are emitted in (shift_start + delay) order across all
// plants, the delay up to Config.MaxDisorder (90 min): no on-time message
// is more than that behind the largest shift_start before it, on any
// partition. A duplicate follows its original by 1–20 min; a late report
// follows its day's end by 48–72 h and only days at least five days before
// the end of the run get one, so that stream time has passed the day's end
// plus the allowed lateness by the time it arrives.
//
// A shift's norm depends on no more than this order. A group's shifts start
// in slots on a grid of its shift length, 6 or 8 h, across days too (24 h
// is a multiple of both); two shifts in different slots start at least 6 h
// apart, more than MaxDisorder (at most 3 h), so of any two on-time shifts
// of a group the earlier starter is emitted first (TestEmitOrder checks
// it). Those that start in the same slot are left out of each other's
// windows, [start − 28 d, start) being open at start; duplicates are
// dropped and late reports enter no window. So whenever the pipeline reads a shift, the shifts in its group's
// window are exactly the on-time shifts of the group that start in
// [start − 28 d, start), in any partitioning by plant and any interleaving
// the disorder allows. The simulator keeps those of the last 29 days per
// group, slot by slot, and takes a near miss's norm from them: the median
// of their rates output/shift_hours, computed from the rounded output as
// the pipeline parses it.
//
// The stream is generated a day at a time: memory holds the plants with 29
// days of each group's rates, one day's messages and the late ones
// pending, never the whole run, so ten million messages (ConfigForEvents)
// are fine. The generator uses its own SplitMix64, so a Config gives a
// byte-identical stream on every platform and Go release.
package simulator
