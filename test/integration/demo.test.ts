import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README's first-run command, exactly as written there, with its output checked.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('syncs the sample, shows live changes and stops cleanly', async () => {
    const env = { ...process.env };
    delete env.ELASTICSEARCH_URL;
    const child = spawn('npm', ['run', 'demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toContain("No ELASTICSEARCH_URL: using the project's local test engine");
    expect(output).toContain('book 1 "It" isbn XX1, authors: Alice Dupont (Paris), Bob Martin (Toronto), languages: ["en=GB","fr=FR"]');
    expect(output).toContain('authors: Alice Dupont (Lyon), Bob Martin (Toronto)');
    expect(output).toContain('languages: ["en=GB","fr=FR","de=DE"]');
    expect(output).toContain('book 3 is gone from the index');
    expect(output).toContain('sluice run exited with code 0');
    expect(output).toMatch(/Done\.\n?$/);
  });
});
