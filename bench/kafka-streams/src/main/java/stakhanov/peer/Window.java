package stakhanov.peer;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * One peer group's recent shifts: (shift start, rate) pairs ordered by start,
 * equal starts in arrival order. Stored as the value of the group's key in a
 * KeyValueStore: 16 bytes a shift, big-endian (start as Unix seconds, rate as
 * an IEEE double), no header.
 */
final class Window {
    long[] starts;
    double[] rates;
    int n;

    private Window(int capacity) {
        starts = new long[capacity];
        rates = new double[capacity];
    }

    static Window empty() {
        return new Window(16);
    }

    static Window decode(byte[] b) {
        int n = b.length / 16;
        Window w = new Window(n + 1);
        ByteBuffer buf = ByteBuffer.wrap(b);
        for (int i = 0; i < n; i++) {
            w.starts[i] = buf.getLong();
            w.rates[i] = buf.getDouble();
        }
        w.n = n;
        return w;
    }

    byte[] encode() {
        ByteBuffer buf = ByteBuffer.allocate(n * 16);
        for (int i = 0; i < n; i++) {
            buf.putLong(starts[i]);
            buf.putDouble(rates[i]);
        }
        return buf.array();
    }

    /** Index of the first shift starting at or after t. */
    int lowerBound(long t) {
        int lo = 0, hi = n;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] < t) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** Index of the first shift starting after t. */
    private int upperBound(long t) {
        int lo = 0, hi = n;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] <= t) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** Adds a shift after those with the same start. */
    void insert(long start, double rate) {
        if (n == starts.length) {
            starts = Arrays.copyOf(starts, n * 2 + 1);
            rates = Arrays.copyOf(rates, n * 2 + 1);
        }
        int i = upperBound(start);
        System.arraycopy(starts, i, starts, i + 1, n - i);
        System.arraycopy(rates, i, rates, i + 1, n - i);
        starts[i] = start;
        rates[i] = rate;
        n++;
    }

    /** Drops shifts that started before t. */
    void pruneBefore(long t) {
        int k = lowerBound(t);
        if (k == 0) return;
        System.arraycopy(starts, k, starts, 0, n - k);
        System.arraycopy(rates, k, rates, 0, n - k);
        n -= k;
    }

    /** The norm of the shifts starting in [from, to). */
    Norm norm(long from, long to, double tolerance, double[] scratch) {
        int a = lowerBound(from), b = lowerBound(to);
        int count = b - a;
        if (count <= 0) return Norm.EMPTY;
        System.arraycopy(rates, a, scratch, 0, count);
        double median = Norm.median(scratch, count);
        double lo = median * (1 - tolerance), hi = median * (1 + tolerance);
        int bulk = 0;
        for (int i = a; i < b; i++) {
            double r = rates[i];
            if (r >= lo && r <= hi) bulk++;
        }
        return new Norm(count, median, (double) bulk / count);
    }

    /** A window's median rate, size and the share of rates within ±tolerance of the median. */
    record Norm(int count, double median, double bulk) {
        static final Norm EMPTY = new Norm(0, Double.NaN, Double.NaN);

        /** Median of a[0..n): the middle value, or the mean of the middle two. Reorders a. */
        static double median(double[] a, int n) {
            int k = n / 2;
            select(a, 0, n - 1, k);
            if ((n & 1) == 1) return a[k];
            double below = a[0]; // the largest of a[0..k), all ≤ a[k] after select
            for (int i = 1; i < k; i++) if (a[i] > below) below = a[i];
            return (below + a[k]) / 2;
        }

        /** Hoare's quickselect: puts the k-th smallest of a[lo..hi] at k, smaller ones before it. */
        private static void select(double[] a, int lo, int hi, int k) {
            while (hi > lo) {
                int mid = (lo + hi) >>> 1;
                // median of three as pivot
                if (a[mid] < a[lo]) swap(a, mid, lo);
                if (a[hi] < a[lo]) swap(a, hi, lo);
                if (a[hi] < a[mid]) swap(a, hi, mid);
                double pivot = a[mid];
                int i = lo, j = hi;
                while (i <= j) {
                    while (a[i] < pivot) i++;
                    while (a[j] > pivot) j--;
                    if (i <= j) {
                        swap(a, i, j);
                        i++;
                        j--;
                    }
                }
                if (k <= j) hi = j;
                else if (k >= i) lo = i;
                else return;
            }
        }

        private static void swap(double[] a, int i, int j) {
            double t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
