import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { HttpServerConfig } from '../../config/config-types.js';
import { AppError } from '../../errors/app-error.js';
import { dropSlot, slotInfo, slotNameFor } from '../../source/postgres/replication-slot.js';
import { buildDocumentQuery, storedRouting } from '../../transform/document-query.js';
import { EntryCheckpointStore } from '../../lifecycle/entry-checkpoint-store.js';
import { rebuildSlotsToDrop, reindexRequestName } from '../../lifecycle/generation-names.js';
import { leaseHolderName } from '../../lifecycle/ownership-lease.js';
import { createContext, findPlan, openSharedCheckpointStore, prepareEntries, type GlobalFlags } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';


/** `sluice preview <index> <id>`: the document Sluice would index for that root, or (`--sql`) the query. */
export async function previewCommand(flags: GlobalFlags & { sql?: boolean }, index: string, id: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const prepared = await prepareEntries(createContext(flags), 1);
  try {
    const plan = findPlan(prepared, index);
    // PGSync's _id joins the key values with "|", in alphabetical column order.
    const key = plan.root.primaryKey.length === 1 ? [id] : id.split('|');
    if (key.length !== plan.root.primaryKey.length) {
      throw new AppError('CFG_INVALID', `id "${id}" must have ${plan.root.primaryKey.length} parts joined by "|" (${plan.root.primaryKey.join(', ')})`);
    }
    const query = buildDocumentQuery(plan, { kind: 'keys', keys: [key] });
    if (flags.sql) {
      out.write(`-- parameters: ${JSON.stringify(query.values)}\n${query.text};\n`);
      return EXIT_CODES.ok;
    }
    const { rows } = await prepared.pool(plan.database).query<{ _id: string; _routing: string | null; _source: string }>(query.text, query.values);
    const row = rows[0];
    if (!row) {
      process.stderr.write(`no root row of ${plan.root.schema}.${plan.root.table} has id "${id}": no document\n`);
      return EXIT_CODES.failure;
    }
    out.write(`${JSON.stringify({ _index: plan.index, _id: row._id, ...(storedRouting(row._routing) !== null ? { _routing: row._routing } : {}), _source: JSON.parse(row._source) as unknown }, null, 2)}\n`);
    return EXIT_CODES.ok;
  } finally {
    await prepared.close();
  }
}

/** How long `reset` holds the index's lease: dropping two slots, waiting for a lingering walsender, fits well within. */
const RESET_LEASE_MS = 60_000;

/** `sluice reset <index>`: forgets the index's checkpoint and slot, so the next `sluice run` syncs it again from a snapshot. */
export async function resetCommand(flags: GlobalFlags, index: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const prepared = await prepareEntries(context, 1);
  try {
    const plan = findPlan(prepared, index);
    const name = slotNameFor(plan.database, plan.index);
    const pool = prepared.pool(plan.database);
    const slot = await slotInfo(pool, name);
    if (slot.active) {
      throw new AppError('SRC_QUERY', `slot ${name} is in use (pid ${slot.activePid}): stop the running Sluice first, then reset`);
    }
    const store = await openSharedCheckpointStore(context, prepared);
    const holder = `reset:${leaseHolderName()}`;
    let cleanup: string[] = [];
    let unreadable: string | undefined;
    try {
      // Between two runs the lease is free; a standby or a run on another machine would own it (and hold no slot).
      const lease = await store.claimLease(name, holder, RESET_LEASE_MS);
      if (lease.owner !== holder) {
        throw new AppError('CKP_NOT_OWNER', `index ${index} is owned by ${lease.owner} (a running \`sluice run\`): stop it first, then reset`);
      }
      try {
        // Progress goes, and a rebuild under way with it: the next run starts the entry over from one snapshot. What is
        // left to delete in the engine (the rebuild's index, retired generations) stays on record for that run.
        const entry = new EntryCheckpointStore(store, name);
        // An unreadable checkpoint is what reset is for: it goes; generations only it named are not known to delete.
        const current = await entry.load(name).catch((error: unknown) => {
          if ((error as { code?: string }).code !== 'CKP_CORRUPT') throw error;
          unreadable = (error as Error).message;
          return undefined;
        });
        entry.fields.rebuild = current?.rebuild;
        entry.fields.retired = current?.retired ?? [];
        // And the generation being synced, which the next run goes on with: one started beside a retired generation
        // has a name the next run could not give it again, and would be left in the engine.
        if (current?.generation !== undefined) entry.fields.generation = current.generation;
        if (current?.fingerprint !== undefined) entry.fields.fingerprint = current.fingerprint;
        cleanup = [...(current?.rebuild ? [current.rebuild.generation] : []), ...entry.fields.retired.map((r) => r.index)];
        // A rebuild under way keeps the slot name it was started with (an earlier version named long ones otherwise).
        const rebuildSlots = rebuildSlotsToDrop(name, current?.rebuild?.slot, prepared.plans.map((p) => slotNameFor(p.database, p.index)));
        await entry.remove(name, { lease: name, holder });
        for (const record of [...rebuildSlots, reindexRequestName(name)]) await store.remove(record, { lease: name, holder });
        if (slot.exists) await dropSlot(pool, name);
        for (const rebuildSlot of rebuildSlots) await dropSlot(pool, rebuildSlot);
      } finally {
        await store.releaseLease(name, holder);
      }
    } finally {
      await store.close();
    }
    if (unreadable !== undefined) out.write(`${index}: removed an unreadable checkpoint (${unreadable}); engine indexes of earlier generations it may have named are left for you to delete\n`);
    const left = cleanup.length > 0 ? ` (it deletes ${cleanup.join(', ')} when due)` : '';
    out.write(`${index}: checkpoint forgotten${slot.exists ? ` and slot ${name} dropped` : ''}; the next \`sluice run\` syncs it again from a snapshot${left}\n`);
    return EXIT_CODES.ok;
  } finally {
    await prepared.close();
  }
}

/**
 * `sluice reindex <index>`: asks for a new generation of the index, built beside the live one and swapped in
 * once it has caught up. The request is kept in the checkpoint store: a running instance picks it up within its
 * heartbeat interval, otherwise the next `sluice run` does.
 */
export async function reindexCommand(flags: GlobalFlags, index: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const prepared = await prepareEntries(context, 1);
  try {
    const plan = findPlan(prepared, index);
    const name = slotNameFor(plan.database, plan.index);
    const store = await openSharedCheckpointStore(context, prepared);
    try {
      const now = new Date().toISOString();
      await store.save(reindexRequestName(name), { slot: name, updatedAt: now });
    } finally {
      await store.close();
    }
    out.write(`${index}: reindex requested; a running \`sluice run\` starts building a new generation within about 10 seconds (or the next start does), and swaps the alias once it has caught up\n`);
    return EXIT_CODES.ok;
  } finally {
    await prepared.close();
  }
}

/**
 * `sluice status`: the running instance's /status when it answers on SLUICE_HTTP_PORT of this host, else what
 * the checkpoint store and the slots say.
 */
export async function statusCommand(flags: GlobalFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const http = context.config.http;
  let why = '';
  if (http?.port) {
    const answer = await localStatus(http).catch((error: unknown) => ({ reason: error instanceof Error ? error.message : String(error) }));
    if ('body' in answer) {
      out.write(`${answer.body}\n`);
      return EXIT_CODES.ok;
    }
    const host = statusHost(http.host);
    why = ` on ${host.includes(':') ? `[${host}]` : host}:${http.port} (${answer.reason})`;
  }
  const prepared = await prepareEntries(context, 1);
  const store = await openSharedCheckpointStore(context, prepared);
  try {
    out.write(`no running instance answered${why}; from the checkpoint store and the replication slots:\n`);
    for (const plan of prepared.plans) {
      const name = slotNameFor(plan.database, plan.index);
      // One unreadable record is that index's line, not the end of the report.
      const checkpoint = await store.load(name).catch((error: unknown) => {
        if (!(error instanceof AppError) || error.code !== 'CKP_CORRUPT') throw error;
        out.write(`  ${plan.index}: checkpoint unreadable (${error.message}); \`sluice reset ${plan.index}\` removes it\n`);
        return null;
      });
      if (checkpoint === null) continue;
      const slot = await slotInfo(prepared.pool(plan.database), name);
      const phase = !checkpoint ? 'not started' : !checkpoint.snapshot?.complete ? `snapshot in progress (done up to ${JSON.stringify(checkpoint.snapshot?.doneUpTo ?? checkpoint.snapshot?.doneInKeyOrder ?? null)})` : 'streaming';
      const slotText = !slot.exists ? 'no slot' : `slot ${name}${slot.active ? ' (in use)' : ''}${slot.invalidated ? ' INVALIDATED' : ''}, retained WAL ${slot.retainedBytes ?? '?'} bytes`;
      // An instance on another host (or behind another port) answers nothing here, but its lease names it.
      const lease = await store.leaseOf(name);
      const ownerText = lease ? `owned by ${lease.owner} (lease ends in ${(lease.remainingMs / 1000).toFixed(1)} s unless renewed)` : 'no owner';
      out.write(`  ${plan.index}: ${phase}; checkpoint lsn ${checkpoint?.lsn ?? '-'}; ${slotText}; ${ownerText}\n`);
    }
    return EXIT_CODES.ok;
  } finally {
    await store.close();
    await prepared.close();
  }
}

/**
 * GET /status of the instance on this host, with SLUICE_HTTP_TOKEN, over HTTPS when SLUICE_HTTP_TLS_CERT is set. The
 * certificate is checked by being the configured one (it names the service, not 127.0.0.1) before anything is sent.
 * The body when it answers 200 within a second, else why not.
 */
async function localStatus(http: HttpServerConfig): Promise<{ body: string } | { reason: string }> {
  const host = statusHost(http.host);
  let secured: TLSSocket | undefined;
  if (http.tls !== undefined) {
    const expected = new X509Certificate(http.tls.cert).fingerprint256;
    secured = tlsConnect({ host, port: http.port, rejectUnauthorized: false });
    try {
      await once(secured, 'secureConnect', { signal: AbortSignal.timeout(1000) });
    } catch (error) {
      secured.destroy();
      throw error;
    }
    if (secured.getPeerX509Certificate()?.fingerprint256 !== expected) {
      secured.destroy();
      return { reason: 'it serves another certificate than SLUICE_HTTP_TLS_CERT' };
    }
  }
  const socket = secured;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host,
        port: http.port,
        path: '/status',
        timeout: 1000,
        headers: http.token === undefined ? {} : { authorization: `Bearer ${http.token}` },
        ...(socket === undefined ? {} : { createConnection: () => socket }),
      },
      (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        const refused = res.statusCode === 401 ? ': SLUICE_HTTP_TOKEN differs from the instance\'s' : '';
        res.on('end', () => resolve(res.statusCode === 200 ? { body } : { reason: `it answered ${res.statusCode}${refused}` }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Where this host's instance answers: its bind address, or loopback when it listens on every address. */
function statusHost(bind: string | undefined): string {
  if (bind === undefined || bind === '' || bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return bind;
}
