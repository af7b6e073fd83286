import { parseArgs } from 'node:util';
import { isFlavor } from './flavors.js';
import { startTestEngine } from './index.js';

const { values } = parseArgs({
  options: {
    flavor: { type: 'string', default: 'es8' },
    port: { type: 'string', default: '9200' },
    host: { type: 'string', default: '127.0.0.1' },
    'max-content-length': { type: 'string' },
  },
});

if (!isFlavor(values.flavor)) {
  process.stderr.write(`unknown flavor [${values.flavor}], expected es7, es8, es9 or opensearch2\n`);
  process.exit(2);
}

const engine = await startTestEngine({
  flavor: values.flavor,
  port: Number(values.port),
  host: values.host,
  maxContentLengthBytes: values['max-content-length'] ? Number(values['max-content-length']) : undefined,
});
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  engine.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Only once the signal handlers are in place: whoever waits for this line may signal right away.
process.stdout.write(`listening on ${engine.url}\n`);
