import { Writable } from 'node:stream';

/** A stream that records every write; `isTTY` makes it pass for a terminal. */
export class RecordingStream extends Writable {
  readonly writes: string[] = [];
  readonly isTTY: boolean;
  columns = 80;

  constructor(isTTY: boolean) {
    super({ decodeStrings: false });
    this.isTTY = isTTY;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writes.push(chunk.toString());
    callback();
  }

  get text(): string {
    return this.writes.join('');
  }

  asWriteStream(): NodeJS.WriteStream {
    return this as unknown as NodeJS.WriteStream;
  }
}

/** Terminal control: escape sequences (colours, erase line) and carriage returns. */
export const CONTROL = /[\x1b\r]/;
