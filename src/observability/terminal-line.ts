/** Carriage return, then erase to the end of the line: the cursor is back at column 0 of an empty line. */
export const CLEAR_LINE = '\r\x1b[K';

/**
 * The last line of a terminal, kept for a live status (the snapshot progress bar) under the log lines. A log
 * line written while the status is shown erases it, takes its place and redraws it below, in one write, so the
 * two never interleave. Only ever used on a TTY: nothing here is written to a pipe or a file.
 */
export class TerminalLine {
  private shown: string | undefined;
  /** False when the logger on this terminal writes JSON: something parses the output, so no bar is drawn. */
  barAllowed = true;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  get isShown(): boolean {
    return this.shown !== undefined;
  }

  draw(text: string): void {
    this.shown = text;
    this.stream.write(`${CLEAR_LINE}${text}`);
  }

  clear(): void {
    if (this.shown === undefined) return;
    this.shown = undefined;
    this.stream.write(CLEAR_LINE);
  }

  /** Writes whole lines (ending in a line feed) above the status line. */
  writeAbove(text: string): void {
    this.stream.write(this.shown === undefined ? text : `${CLEAR_LINE}${text}${this.shown}`);
  }
}

const lines = new WeakMap<object, TerminalLine>();

/** The one TerminalLine of a stream, shared by the logger and the progress reporter writing to it. */
export function terminalLine(stream: NodeJS.WritableStream): TerminalLine {
  let line = lines.get(stream);
  if (line === undefined) {
    line = new TerminalLine(stream);
    lines.set(stream, line);
  }
  return line;
}

export function isTerminal(stream: NodeJS.WritableStream | undefined): boolean {
  return (stream as { isTTY?: unknown } | undefined)?.isTTY === true;
}
