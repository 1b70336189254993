/**
 * Fleet commands: `group add|list|show|rm|add-host|remove-host`, `job
 * list|show|cancel`, `wake MAC...|--group NAME`, `schedule
 * add|list|show|rm`. They speak only the HTTP API (/api/v1/groups, jobs,
 * wake, schedules). Jobs are made by `task ... --group NAME` or `task ...
 * MAC MAC...` (src/cli/task-request.ts).
 */
import type { Command } from 'commander';
import { macListText } from '../model/task-request.js';
import type {
  DeletedName,
  DeletedSchedule,
  Group,
  GroupList,
  Job,
  JobDetail,
  JobList,
  MembersAdded,
  Schedule,
  ScheduleDetail,
  ScheduleList,
  WakeRound,
  WakeTarget,
  WakeTargets,
} from '../http/schemas/index.js';
import { connect, CliError, type ApiClient } from './client.js';
import type { GlobalOptions } from './globals.js';
import { formatPercent, parseId, printFields, time } from './imaging.js';
import { printJson, printLine, printTable } from './output.js';
import { parseScheduledTask } from './task-request.js';

const groupPath = (name: string): string => `/groups/${encodeURIComponent(name)}`;

/** "3 done, 1 running, 8 queued" in the order of the lifecycle. */
export function countsText(counts: Job['counts']): string {
  const order = ['running', 'waiting', 'booting', 'queued', 'scheduled', 'done', 'failed', 'cancelled'] as const;
  return order.filter((s) => (counts[s] ?? 0) > 0).map((s) => `${counts[s] ?? 0} ${s}`).join(', ');
}

/** A job's group, or for a list of MACs how many hosts ("3 hosts"; group names have no spaces). */
function jobGroup(j: Job): string {
  return j.group ?? `${j.total} host${j.total === 1 ? '' : 's'}`;
}

function jobRow(j: Job): Array<string | null> {
  return [String(j.id), j.type, jobGroup(j), j.image, j.state, `${j.counts.done ?? 0}/${j.total}`, j.percent === null ? null : `${j.percent.toFixed(1)}%`, countsText(j.counts), time(j.createdAt)];
}

function printJob(j: JobDetail): void {
  printFields([
    ['job', j.id],
    ['type', j.type],
    j.group !== null ? ['group', j.group] : ['hosts', macListText(j.request.macs ?? [], 8)],
    ['image', j.image],
    ['state', j.state],
    ['members', `${j.total}: ${countsText(j.counts)}`],
    ['progress', j.percent === null ? null : `${j.percent.toFixed(1)}%`],
    ['start at', j.state === 'scheduled' ? time(j.startAt) : null],
    ['wake', j.request.wake ? 'yes' : null],
    ['schedule', j.scheduleId],
    ['created', time(j.createdAt)],
  ]);
  printLine('');
  printTable(
    ['MAC', 'HOST', 'TASK', 'STATE', 'PHASE', 'PERCENT', 'ERROR'],
    j.tasks.map((t) => [t.mac, t.hostName, String(t.id), t.state, t.phase, t.state === 'done' ? '100.0%' : formatPercent(t.bytesDone, t.bytesTotal), t.error]),
    'No member tasks.',
  );
}

function printSchedule(s: Schedule & { upcoming?: string[] }): void {
  const r = s.request;
  printFields([
    ['schedule', s.id],
    ['name', s.name],
    ['cron', `${s.cron} (server time zone)`],
    ['request', requestText(r)],
    ['next', time(s.nextRunAt)],
    ['then', s.upcoming && s.upcoming.length > 1 ? s.upcoming.slice(1).map((u) => time(u)).join(', ') : null],
    ['last run', time(s.lastRunAt)],
    ['last result', s.lastResult],
    ['created', time(s.createdAt)],
  ]);
}

/** "inventory of group lab12, wake", "deploy of image win11 to 52:54:00:aa:bb:01 52:54:00:aa:bb:02" */
export function requestText(r: Schedule['request']): string {
  const who = r.group !== undefined ? `group ${r.group}` : r.macs !== undefined ? macListText(r.macs) : (r.mac ?? '?');
  const parts = [`${r.type}${r.image ? ` of image ${r.image}` : ''} ${r.type === 'deploy' ? 'to' : 'of'} ${who}`];
  if (r.revision) parts.push(`revision ${r.revision}`);
  if (r.disk) parts.push(`disk ${r.disk}`);
  if (r.table && r.table !== 'keep') parts.push(`table ${r.table}`);
  if (r.wake) parts.push('wake');
  return parts.join(', ');
}

function printTargets(targets: readonly WakeTarget[]): void {
  printTable(['ADDRESS', 'PORT', 'WHY'], targets.map((t) => [t.address, String(t.port), t.reason]), 'No targets (a loopback server address, no pools, relays or wake.subnets).');
}

export function registerFleetCommands(program: Command, globals: GlobalOptions): void {
  const api = (): Promise<ApiClient> => connect(globals);

  // ---- group
  const group = program.command('group').description('host groups: named sets of hosts that task commands (--group) and wake act on');
  group
    .command('add')
    .description('add an empty host group')
    .argument('<name>', 'group name: letters, digits, . _ - (up to 64)')
    .action(async (name: string) => {
      const g = await (await api()).request<Group>('POST', '/groups', { name });
      if (globals.json) printJson(g);
      else printLine(`Added group ${g.name} (no members yet: fleetboot group add-host ${g.name} MAC...)`);
    });
  group
    .command('list')
    .alias('ls')
    .description('list host groups with their number of members')
    .action(async () => {
      const { groups } = await (await api()).request<GroupList>('GET', '/groups');
      if (globals.json) printJson(groups);
      else printTable(['NAME', 'MEMBERS', 'CREATED'], groups.map((g) => [g.name, String(g.members), time(g.createdAt)]), 'No groups.');
    });
  group
    .command('show')
    .description("a group's members")
    .argument('<name>')
    .action(async (name: string) => {
      const g = await (await api()).request<Group>('GET', groupPath(name));
      if (globals.json) printJson(g);
      else {
        printLine(`group ${g.name}, ${g.members.length} member${g.members.length === 1 ? '' : 's'}, created ${time(g.createdAt) ?? '-'}`);
        printTable(['MAC', 'HOST', 'ADDED'], g.members.map((m) => [m.mac, m.name, time(m.addedAt)]), 'No members.');
      }
    });
  group
    .command('rm')
    .alias('remove')
    .description('delete a group (its hosts stay; refused while a schedule uses it)')
    .argument('<name>')
    .action(async (name: string) => {
      const r = await (await api()).request<DeletedName>('DELETE', groupPath(name));
      if (globals.json) printJson(r);
      else printLine(`Deleted group ${r.deleted}`);
    });
  group
    .command('add-host')
    .description('add known hosts to a group (all or none; a MAC that is not a host is refused: fleetboot host add MAC)')
    .argument('<name>')
    .argument('<macs...>')
    .action(async (name: string, macs: string[]) => {
      const r = await (await api()).request<MembersAdded>('POST', `${groupPath(name)}/members`, { macs });
      if (globals.json) printJson(r);
      else printLine(`Group ${name}: added ${r.added.length ? r.added.join(' ') : 'nothing'}${r.already.length ? ` (already members: ${r.already.join(' ')})` : ''}; ${r.group.members.length} member${r.group.members.length === 1 ? '' : 's'}`);
    });
  group
    .command('remove-host')
    .description('remove hosts from a group (all or none)')
    .argument('<name>')
    .argument('<macs...>')
    .action(async (name: string, macs: string[]) => {
      const g = await (await api()).request<Group>('POST', `${groupPath(name)}/members/remove`, { macs });
      if (globals.json) printJson(g);
      else printLine(`Group ${name}: removed ${macs.join(' ')}; ${g.members.length} member${g.members.length === 1 ? '' : 's'}`);
    });

  // ---- job
  const job = program.command('job').description('jobs: the tasks one command made for the members of a group or for several MACs');
  job
    .command('list')
    .alias('ls')
    .description('list jobs, newest first, with their members\' states')
    .option('--limit <n>', 'at most this many (1-9999)')
    .action(async (opts: { limit?: string }) => {
      const { jobs } = await (await api()).request<JobList>('GET', `/jobs${opts.limit !== undefined ? `?limit=${encodeURIComponent(opts.limit)}` : ''}`);
      if (globals.json) printJson(jobs);
      else printTable(['ID', 'TYPE', 'GROUP', 'IMAGE', 'STATE', 'DONE', 'PROGRESS', 'MEMBERS', 'CREATED'], jobs.map(jobRow), 'No jobs.');
    });
  job
    .command('show')
    .description('a job: each member\'s task, state, phase, percent and error')
    .argument('<id>')
    .action(async (raw: string) => {
      const j = await (await api()).request<JobDetail>('GET', `/jobs/${parseId(raw)}`);
      if (globals.json) printJson(j);
      else printJob(j);
    });
  job
    .command('cancel')
    .description("cancel every unfinished task of a job")
    .argument('<id>')
    .action(async (raw: string) => {
      const j = await (await api()).request<JobDetail>('POST', `/jobs/${parseId(raw)}/cancel`);
      if (globals.json) printJson(j);
      else printLine(`Job ${j.id}: ${countsText(j.counts)}`);
    });

  // ---- wake
  program
    .command('wake')
    .description('wake machines with Wake-on-LAN magic packets (to the server segment\'s broadcast and each known subnet\'s directed broadcast, several times)')
    .argument('[macs...]', 'MAC addresses (any machine, host or not)')
    .option('--group <name>', 'every member of this host group')
    .option('--targets', 'show where the packets go (and the relays heard), send nothing')
    .action(async (macs: string[], opts: { group?: string; targets?: boolean }) => {
      if (opts.targets) {
        const r = await (await api()).request<WakeTargets>('GET', '/wake/targets');
        if (globals.json) printJson(r);
        else {
          printTargets(r.targets);
          if (r.relays.length) printLine(`relays heard: ${r.relays.map((x) => `${x.giaddr} (last ${time(x.lastSeenAt) ?? '-'})`).join(', ')}`);
        }
        return;
      }
      if (macs.length > 0 && opts.group !== undefined) throw new CliError(`Name MACs or --group NAME, not both: got ${macs.join(' ')} and --group ${opts.group}`);
      if (macs.length === 0 && opts.group === undefined) throw new CliError('Name the machines to wake: MAC... or --group NAME');
      const r = await (await api()).request<WakeRound>('POST', '/wake', opts.group !== undefined ? { group: opts.group } : { macs });
      if (globals.json) printJson(r);
      else {
        printLine(`Waking ${r.macs.length} machine${r.macs.length === 1 ? '' : 's'} (${r.macs.join(' ')}): ${r.repeats} send${r.repeats === 1 ? '' : 's'} ${r.spacingSeconds} s apart to ${r.targets.length} target${r.targets.length === 1 ? '' : 's'}; the first sent ${r.sent} packet${r.sent === 1 ? '' : 's'}`);
        printTargets(r.targets);
        for (const e of r.errors) process.stderr.write(`fleetboot: wake: ${e}\n`);
      }
    });

  // ---- schedule
  const schedule = program.command('schedule').description('recurring schedules: a cron expression and a task command run at its times');
  schedule
    .command('add')
    .description('add a schedule: `schedule add --cron "0 22 * * 1-5" [--name N] -- task inventory --group lab12 [--wake]` (the task after -- takes the task commands\' options, except --at)')
    .requiredOption('--cron <expr>', 'when: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, in the server\'s time zone')
    .option('--name <name>', 'a name for it (letters, digits, . _ -; not a number)')
    .argument('<task...>', 'after --: the task command, e.g. task deploy --group lab12 --image win11 --wake, or task inventory MAC MAC...')
    .action(async (words: string[], opts: { cron: string; name?: string }) => {
      const request = await parseScheduledTask(words);
      const s = await (await api()).request<ScheduleDetail>('POST', '/schedules', { cron: opts.cron, request, ...(opts.name !== undefined ? { name: opts.name } : {}) });
      if (globals.json) printJson(s);
      else printLine(`Added schedule ${s.id}${s.name ? ` (${s.name})` : ''}: ${requestText(s.request)}, at ${s.cron}; next ${time(s.nextRunAt) ?? '-'}`);
    });
  schedule
    .command('list')
    .alias('ls')
    .description('list schedules')
    .action(async () => {
      const { schedules } = await (await api()).request<ScheduleList>('GET', '/schedules');
      if (globals.json) printJson(schedules);
      else printTable(['ID', 'NAME', 'CRON', 'REQUEST', 'NEXT', 'LAST RESULT'], schedules.map((s) => [String(s.id), s.name, s.cron, requestText(s.request), time(s.nextRunAt), s.lastResult]), 'No schedules.');
    });
  schedule
    .command('show')
    .description('a schedule: its request, next times and last result')
    .argument('<id-or-name>')
    .action(async (ref: string) => {
      const s = await (await api()).request<ScheduleDetail>('GET', `/schedules/${encodeURIComponent(ref)}`);
      if (globals.json) printJson(s);
      else printSchedule(s);
    });
  schedule
    .command('rm')
    .alias('remove')
    .description('remove a schedule (the tasks and jobs it made stay)')
    .argument('<id-or-name>')
    .action(async (ref: string) => {
      const r = await (await api()).request<DeletedSchedule>('DELETE', `/schedules/${encodeURIComponent(ref)}`);
      if (globals.json) printJson(r);
      else printLine(`Removed schedule ${r.deleted.id}${r.deleted.name ? ` (${r.deleted.name})` : ''}`);
    });
}
