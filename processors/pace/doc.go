// Package pace holds the pace-setting rule, judged once per closed day of a
// peer group. Each worker's day rate is their total output over their total
// hours that day. With at least MinWorkers workers, a worker whose day rate
// reaches SetterRatio times the day's median worker rate is a pace-setter,
// and the group holds a common pace when at least CommonShare of its
// workers' day rates lie within ±Tolerance of that median — most flags at
// one height, a few at the top of the mast.
package pace
