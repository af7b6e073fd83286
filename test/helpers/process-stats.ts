// Peak memory of a child process, read from the kernel (VmHWM), for bounded-memory tests and benchmarks.
import { readFileSync } from 'node:fs';

/** Samples VmHWM (the kernel's peak resident set) of a process until stopped; returns the peak in KiB. */
export function trackPeakRss(pid: number, intervalMs = 100): { stop(): number } {
  let peakKb = 0;
  const sample = () => {
    try {
      const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
      if (match) peakKb = Math.max(peakKb, Number(match[1]));
    } catch {
      // The process has exited; the last sample stands.
    }
  };
  const timer = setInterval(sample, intervalMs);
  sample();
  return {
    stop: () => {
      clearInterval(timer);
      return peakKb;
    },
  };
}
