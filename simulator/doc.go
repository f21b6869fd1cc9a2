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
// shift but too_large. See Truth for what each list guarantees.
//
// Why no alert arises unplanted. Let b be a group's base rate and ε = 0.5 %
// the rounding error. An ordinary rate lies in [0.817b, 1.197b](1 ± ε), so
// any median of ordinary rates does too, and an ordinary worker reaches at
// most 1.197/0.817 · (1+ε)/(1−ε) < 1.48× a day's median (pace-setter: 1.5×)
// and of a window's median (record: 3×). A pace-setter reaches at most
// 2.3 · 1.04 · (1+ε)² b and a window median is at least 0.817b(1−ε): a ratio
// below 2.98. A planted record is at least 4b(1−ε) against a window median
// of at most 1.197b(1+ε) (planted shifts are far fewer than half of any
// window): a ratio above 3.3. Records are planted only once the group has 20
// shifts in the days of the window before the record's day.
//
// Emit order. Messages are emitted in (shift_start + delay) order across all
// plants, the delay up to Config.MaxDisorder (90 min): no on-time message
// is more than that behind the largest shift_start before it, on any
// partition. A duplicate follows its original by 1–20 min; a late report
// follows its day's end by 48–72 h and only days at least five days before
// the end of the run get one, so that stream time has passed the day's end
// plus the allowed lateness by the time it arrives.
//
// The stream is generated a day at a time: memory holds the plants, one
// day's messages and the late ones pending, never the whole run, so ten
// million messages (ConfigForEvents) are fine. The generator uses its own
// SplitMix64, so a Config gives a byte-identical stream on every platform
// and Go release.
package simulator
