import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSchemaFile } from '../../../src/schema/load-schema-file.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-schema-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Buffer | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const entry = (table: string) => JSON.stringify([{ database: 'db', nodes: { table } }]);

describe('loadSchemaFile', () => {
  it('reads a file that starts with a byte-order mark, as some Windows editors write it', async () => {
    const { entries } = await loadSchemaFile(file('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(entry('book'))])), {});
    expect(entries.map((e) => e.nodes.table)).toEqual(['book']);
  });

  it('keeps UTF-8 names, and refuses a file in another encoding instead of mangling them', async () => {
    expect((await loadSchemaFile(file('utf8.json', entry('libro_año')), {})).entries[0]?.nodes.table).toBe('libro_año');
    const latin1 = file('latin1.json', Buffer.from(entry('libro_año'), 'latin1'));
    await expect(loadSchemaFile(latin1, {})).rejects.toMatchObject({ code: 'CFG_SCHEMA_FILE', message: `Schema file ${latin1} is not UTF-8 text: save it as UTF-8` });
  });

  it('names the file when it is missing or not JSON', async () => {
    await expect(loadSchemaFile(join(dir, 'none.json'), {})).rejects.toMatchObject({ code: 'CFG_SCHEMA_FILE', message: expect.stringContaining('file not found (set it with --config or SCHEMA)') });
    await expect(loadSchemaFile(file('bad.json', '[{'), {})).rejects.toMatchObject({ code: 'CFG_SCHEMA_FILE', message: expect.stringContaining('is not valid JSON') });
  });
});
