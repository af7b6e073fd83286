import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface StartedProcess {
  child: ChildProcess;
  match: RegExpMatchArray;
  stop(): Promise<void>;
}

/** Starts a process and resolves once a line of its standard output matches `ready`. */
export function startProcess(command: string, args: string[], ready: RegExp): Promise<StartedProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = buffered.match(ready);
      if (match) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({
          child,
          match,
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready`)));
  });
}

/** BENCH_ENGINE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the test engine. */
export function engineNodeArgs(): string[] {
  return process.env.BENCH_ENGINE_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [];
}

/**
 * Compiles Sluice as the Docker image runs it (tsc, then node on the output, no TypeScript loader) into
 * .tmp/bench-build, inside the project so that node_modules resolves, and returns the CLI's path. Not dist/:
 * bin/sluice.js would then run that build in tests too. Measuring through the loader would count its worker
 * thread and transpiled sources in Sluice's memory and CPU.
 */
export function buildSluice(): string {
  const outDir = join('.tmp', 'bench-build');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', outDir], { stdio: 'inherit' });
  return join(outDir, 'cli.js');
}
