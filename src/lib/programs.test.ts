/**
 * The program table against the code and against scripts/install-deps.sh:
 * - every child_process call in src/, test/, bench/ and scripts/ gets its
 *   program from `program()` (or is `process.execPath`), unless the line
 *   above marks it as a program of the machine the endpoint agent runs on
 *   (FOREIGN_PROGRAM_MARK);
 * - every program named where one is expected (arguments and declarations
 *   typed ProgramName/Argv, `program('x')`, the command after `ip netns exec
 *   NS`, `taskset -c N`, `timeout S`, `env -C DIR`, and the commands of a
 *   literal `sh -c` / `bash -c` script) is in the table;
 * - the checks of the shell scripts (`for t in ...; do command -v`, `command
 *   -v X`, build-bootenv.sh's TOOLS) name listed programs (TOOLS: same package);
 * - install-deps installs every package of the table for its role, and
 *   installs nothing the table does not explain.
 *
 * Type checking (tsc) covers what a syntax scan cannot: a non-literal
 * ProgramName must come from the table to compile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { FILE_PACKAGES, PROGRAMS, isProgramName, program, type ProgramName } from './programs.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const SCAN_DIRS = ['src', 'test', 'bench', 'scripts'];

/** child_process functions that run a program file (the first argument). */
const CP_FILE_FNS = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync']);
/** child_process functions that run a shell command line (the first argument). */
const CP_SHELL_FNS = new Set(['exec', 'execSync']);

/** Shell words that are not programs: builtins and keywords of dash and bash. */
const SHELL_BUILTINS = new Set([
  'cd', 'echo', 'exit', 'export', 'set', 'unset', 'read', 'wait', 'jobs', 'kill', 'test', '[', '[[', 'true', 'false',
  'printf', 'return', 'shift', 'trap', 'eval', 'local', 'command', 'type', 'umask', 'ulimit', 'exec', ':', '.', 'source',
  'break', 'continue', 'getopts', 'hash', 'readonly', 'times', 'alias', 'pwd',
]);
const SHELL_KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', '!', '{', '}', 'esac']);

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'build' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

export interface Finding {
  where: string;
  message: string;
}

interface Parsed {
  file: string;
  sf: ts.SourceFile;
}

function parse(file: string, text = readFileSync(file, 'utf8')): Parsed {
  const kind = /\.(mjs|js)$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  return { file, sf: ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind) };
}

function where(p: Parsed, node: ts.Node): string {
  const { line } = p.sf.getLineAndCharacterOfPosition(node.getStart(p.sf));
  return `${relative(ROOT, p.file)}:${line + 1}`;
}

/** Which parameters of a function take a program: 'name' (ProgramName) or 'argv' (Argv). */
type Slots = Map<number, 'name' | 'argv'>;

function slotKind(type: ts.TypeNode | undefined): 'name' | 'argv' | null {
  if (!type) return null;
  const t = type.getText().replace(/\s+/g, '');
  if (t === 'ProgramName') return 'name';
  if (t === 'Argv') return 'argv';
  return null;
}

/** Per file: its functions, methods and constructors by name, with their ProgramName/Argv parameters (maybe none). */
type Helpers = Map<string, Map<string, Slots>>;

function collectHelpers(files: Parsed[]): Helpers {
  const helpers: Helpers = new Map();
  for (const p of files) {
    const decls = new Map<string, Slots>();
    helpers.set(p.file, decls);
    const add = (name: string, params: ts.NodeArray<ts.ParameterDeclaration>): void => {
      const slots = decls.get(name) ?? new Map<number, 'name' | 'argv'>();
      params.forEach((param, i) => {
        const kind = slotKind(param.type);
        if (kind) slots.set(i, kind);
      });
      decls.set(name, slots);
    };
    const visit = (node: ts.Node): void => {
      if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name) add(node.name.getText(p.sf), node.parameters);
      if (ts.isConstructorDeclaration(node) && ts.isClassDeclaration(node.parent) && node.parent.name) add(node.parent.name.text, node.parameters);
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))) {
        add(node.name.text, node.initializer.parameters);
      }
      ts.forEachChild(node, visit);
    };
    visit(p.sf);
  }
  return helpers;
}

/**
 * The program slots of a call: a function declared in the file itself or
 * imported from one of ours (by its module), or for a method, those of every
 * method by that name.
 */
function slotsFor(helpers: Helpers, file: string, name: string, imported: ReadonlyMap<string, { file: string; name: string }>, isMethod: boolean): Slots | undefined {
  if (isMethod) {
    const all = new Map<number, 'name' | 'argv'>();
    for (const decls of helpers.values()) for (const [i, k] of decls.get(name) ?? []) all.set(i, k);
    return all;
  }
  const from = imported.get(name);
  if (from) return helpers.get(from.file)?.get(from.name);
  return helpers.get(file)?.get(name);
}

/** The value of a string literal or template without substitutions; templates with substitutions get a placeholder per `${}`. */
function literalText(node: ts.Node): string | null {
  if (ts.isAsExpression(node) || ts.isSatisfiesExpression(node) || ts.isParenthesizedExpression(node)) return literalText(node.expression);
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) return node.head.text + node.templateSpans.map((s) => `\u0000${s.literal.text}`).join('');
  return null;
}

function isExecPath(node: ts.Node): boolean {
  return ts.isPropertyAccessExpression(node) && node.getText() === 'process.execPath';
}

/** `program('x')` -> 'x'; `program(other)` -> '' (typed); anything else -> null. */
function programCall(node: ts.Node): string | null {
  if (!ts.isCallExpression(node) || !ts.isIdentifier(node.expression) || node.expression.text !== 'program') return null;
  const arg = node.arguments[0];
  return arg ? (literalText(arg) ?? '') : '';
}

function isResolveSpread(node: ts.Node): boolean {
  return ts.isSpreadElement(node) && ts.isCallExpression(node.expression) && ts.isIdentifier(node.expression.expression) && node.expression.expression.text === 'resolveArgv';
}

/**
 * Command words of a shell script: the first word of each simple command
 * (after assignments, keywords and `exec`), skipping `for`/`case` headers and
 * words that are expanded at run time ($VAR, "$@", a template's ${}).
 */
export function shellCommands(script: string): string[] {
  const out: string[] = [];
  const segments = script
    .replace(/#[^\n]*/g, '')
    .split(/\$\(|`|\(|\)|;;|&&|\|\||[;&|\n]/);
  for (const seg of segments) {
    const words = seg.trim().split(/\s+/).filter(Boolean);
    let i = 0;
    while (i < words.length && (SHELL_KEYWORDS.has(words[i] as string) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] as string) || words[i] === 'exec')) i++;
    const w = words[i];
    if (w === undefined || w === 'for' || w === 'case' || w === 'in') continue;
    if (/^["'$\\\u0000<>0-9]/.test(w) || w.includes('\u0000')) continue;
    if (SHELL_BUILTINS.has(w)) continue;
    out.push(w);
  }
  return out;
}

/** The literals an expression can evaluate to: itself, both arms of a conditional, array elements, property values. */
function valueLiterals(node: ts.Node): ts.Node[] {
  if (literalText(node) !== null) return [node];
  if (ts.isAsExpression(node) || ts.isSatisfiesExpression(node) || ts.isParenthesizedExpression(node)) return valueLiterals(node.expression);
  if (ts.isConditionalExpression(node)) return [...valueLiterals(node.whenTrue), ...valueLiterals(node.whenFalse)];
  if (ts.isArrayLiteralExpression(node)) return node.elements.flatMap(valueLiterals);
  if (ts.isObjectLiteralExpression(node)) return node.properties.flatMap((p) => (ts.isPropertyAssignment(p) ? valueLiterals(p.initializer) : []));
  return [];
}

/**
 * A spawn of a program of another machine, not of this server and its tests
 * (the endpoint agent runs an administrator's package command and the
 * reboot and host-name commands of the machine it is installed on): the
 * line above says so with `// runs the machine's own program: WHY`.
 */
export const FOREIGN_PROGRAM_MARK = "// runs the machine's own program:";

function foreignProgram(p: Parsed, node: ts.Node): boolean {
  const line = p.sf.getLineAndCharacterOfPosition(node.getStart(p.sf)).line;
  const above = p.sf.text.split('\n')[line - 1] ?? '';
  return above.trim().startsWith(FOREIGN_PROGRAM_MARK);
}

/** Checks the spawns and program names of one file. */
function scanFile(p: Parsed, helpers: Helpers): Finding[] {
  const findings: Finding[] = [];
  const fail = (node: ts.Node, message: string): void => void findings.push({ where: where(p, node), message });
  const checkName = (node: ts.Node, name: string, how: string): void => {
    if (!isProgramName(name)) fail(node, `${how} '${name}', which src/lib/programs.ts does not list`);
  };

  // Local names of the child_process functions (imports and promisify(...) aliases) and local string constants.
  const cpFile = new Set<string>();
  const cpShell = new Set<string>();
  const constants = new Map<string, ts.Node>();
  const imported = new Map<string, { file: string; name: string }>();
  const collect = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && node.moduleSpecifier.text.startsWith('.')) {
      const from = resolve(dirname(p.file), node.moduleSpecifier.text.replace(/\.js$/, '.ts'));
      const named = node.importClause?.namedBindings;
      if (named && ts.isNamedImports(named)) for (const el of named.elements) imported.set(el.name.text, { file: from, name: (el.propertyName ?? el.name).text });
    }
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && /^(node:)?child_process$/.test(node.moduleSpecifier.text)) {
      const named = node.importClause?.namedBindings;
      if (named && ts.isNamedImports(named)) {
        for (const el of named.elements) {
          const orig = (el.propertyName ?? el.name).text;
          if (CP_FILE_FNS.has(orig)) cpFile.add(el.name.text);
          if (CP_SHELL_FNS.has(orig)) cpShell.add(el.name.text);
        }
      }
    }
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
      const init = node.initializer;
      if (ts.isCallExpression(init) && init.expression.getText(p.sf) === 'promisify' && init.arguments[0] && ts.isIdentifier(init.arguments[0])) {
        const target = init.arguments[0].text;
        if (cpFile.has(target)) cpFile.add(node.name.text);
        if (cpShell.has(target)) cpShell.add(node.name.text);
      }
      if (literalText(init) !== null) constants.set(node.name.text, init);
    }
    ts.forEachChild(node, collect);
  };
  collect(p.sf);

  const scriptOf = (node: ts.Node | undefined): string | null => {
    if (!node) return null;
    const direct = literalText(node);
    if (direct !== null) return direct;
    if (ts.isIdentifier(node)) {
      const c = constants.get(node.text);
      return c ? literalText(c) : null;
    }
    return null;
  };
  const checkScript = (node: ts.Node, script: string): void => {
    for (const w of shellCommands(script)) checkName(node, w, 'a shell script runs');
  };

  /**
   * A command line as a list of expressions, from its program on. `typed`: the
   * first word sits where tsc requires a ProgramName (a helper's Argv), so a
   * non-literal is fine there.
   */
  const checkCommand = (seq: readonly ts.Node[], i: number, typed: boolean, via: string): void => {
    const t = seq[i];
    if (!t) return;
    if (ts.isSpreadElement(t)) {
      if (!typed && !isResolveSpread(t)) fail(t, `the program after ${via} is spread from '${t.expression.getText(p.sf)}': spread resolveArgv(...) so it comes from src/lib/programs.ts`);
      return;
    }
    let name: string | null = literalText(t);
    if (name === null) {
      const called = programCall(t);
      if (called !== null) name = called || null;
      else if (isExecPath(t)) name = 'node';
      else {
        if (!typed) fail(t, `the program after ${via} is '${t.getText(p.sf)}', which cannot be read here: use program('...')`);
        return;
      }
    }
    if (name === null) return;
    if (name.includes('\u0000')) {
      fail(t, `the program after ${via} is built from a template: use program('...')`);
      return;
    }
    checkName(t, name, `runs (after ${via})`);
    const word = (k: number): string | null => {
      const n = seq[k];
      return n ? literalText(n) : null;
    };
    switch (name) {
      case 'ip':
        if (word(i + 1) === 'netns' && word(i + 2) === 'exec') checkCommand(seq, i + 4, false, 'ip netns exec NS');
        break;
      case 'taskset':
        checkCommand(seq, word(i + 1) === '-c' ? i + 3 : i + 2, false, 'taskset');
        break;
      case 'timeout': {
        let k = i + 1;
        while (word(k)?.startsWith('-')) k++;
        checkCommand(seq, k + 1, false, 'timeout');
        break;
      }
      case 'env': {
        let k = i + 1;
        for (;;) {
          const w = word(k);
          if (w === '-C' || w === '-u') k += 2;
          else if (w !== null && (w.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w))) k++;
          else break;
        }
        checkCommand(seq, k, false, 'env');
        break;
      }
      case 'sh':
      case 'bash':
        if (word(i + 1) === '-c') {
          const script = scriptOf(seq[i + 2]);
          if (script === null) fail(seq[i + 2] ?? t, `${name} -c runs a script that cannot be read here: make it a literal or a local constant`);
          else checkScript(seq[i + 2] ?? t, script);
        }
        break;
      default:
    }
  };

  /** An expression in an Argv slot: an array literal is a command line; anything else is typed. */
  const checkArgv = (node: ts.Node, via: string): void => {
    if (ts.isArrayLiteralExpression(node)) checkCommand(node.elements, 0, true, via);
  };
  /** An expression in a ProgramName slot. */
  const checkNameSlot = (node: ts.Node, via: string): void => {
    const name = literalText(node);
    if (name !== null) checkName(node, name, `${via} names`);
  };
  const checkSlot = (kind: 'name' | 'argv', node: ts.Node, via: string): void => (kind === 'argv' ? checkArgv(node, via) : checkNameSlot(node, via));

  /** Everything under a declaration typed with ProgramName / Argv. */
  const checkTypedInit = (typeText: string, init: ts.Node, via: string): void => {
    const visit = (n: ts.Node): void => {
      if (ts.isArrayLiteralExpression(n) && /\bArgv\b/.test(typeText)) {
        checkArgv(n, via);
        return;
      }
      if (/\bProgramName\b/.test(typeText) && !/\bArgv\b/.test(typeText)) {
        for (const v of valueLiterals(n)) checkNameSlot(v, via);
        return;
      }
      ts.forEachChild(n, visit);
    };
    visit(init);
  };

  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      const callee = node.expression;
      const calleeName = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : null;
      const args = node.arguments ?? ts.factory.createNodeArray<ts.Expression>();
      const isCp = calleeName !== null && ts.isCallExpression(node) && (ts.isIdentifier(callee) ? cpFile.has(calleeName) : CP_FILE_FNS.has(calleeName));
      const isCpShell = calleeName !== null && ts.isCallExpression(node) && ts.isIdentifier(callee) && cpShell.has(calleeName);
      if (isCp) {
        const first = args[0];
        if (!first) fail(node, `${calleeName}() without a program`);
        else if (programCall(first) === null && !isExecPath(first) && !foreignProgram(p, node)) {
          fail(first, `${calleeName}(${first.getText(p.sf)}, ...): the program must come from program('...') (src/lib/programs.ts) or be process.execPath`);
        } else {
          const rest = args[1];
          const seq: ts.Node[] = [first, ...(rest && ts.isArrayLiteralExpression(rest) ? rest.elements : [])];
          checkCommand(seq, 0, true, `${calleeName}()`);
        }
      } else if (isCpShell) {
        const script = scriptOf(args[0]);
        if (script === null) fail(node, `${calleeName}() runs a shell command that cannot be read here: use execFile with program('...')`);
        else checkScript(node, script);
      } else if (calleeName === 'program' && ts.isIdentifier(callee) && args[0]) {
        checkNameSlot(args[0], 'program()');
      } else if (calleeName !== null) {
        const slots = slotsFor(helpers, p.file, calleeName, imported, ts.isPropertyAccessExpression(callee));
        if (slots) for (const [i, kind] of slots) if (args[i]) checkSlot(kind, args[i], `${calleeName}()`);
      }
    }
    if ((ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) && node.type && node.initializer) {
      checkTypedInit(node.type.getText(p.sf), node.initializer, node.name.getText(p.sf));
    }
    if ((ts.isArrowFunction(node) || ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.type && node.body) {
      const typeText = node.type.getText(p.sf);
      if (/\b(Argv|ProgramName)\b/.test(typeText)) {
        if (ts.isBlock(node.body)) {
          const returns = (n: ts.Node): void => {
            if (ts.isReturnStatement(n) && n.expression) checkTypedInit(typeText, n.expression, 'a return value');
            else if (!ts.isFunctionLike(n)) ts.forEachChild(n, returns);
          };
          ts.forEachChild(node.body, returns);
        } else checkTypedInit(typeText, node.body, 'a return value');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(p.sf);
  return findings;
}

/** Scans source files (path -> text; all of src, test, bench, scripts when omitted). */
export function scanSources(overrides: ReadonlyMap<string, string> = new Map()): Finding[] {
  const paths = SCAN_DIRS.flatMap((d) => walk(join(ROOT, d)));
  for (const p of overrides.keys()) if (!paths.includes(p)) paths.push(p);
  const parsed = paths.map((f) => parse(f, overrides.get(f)));
  const helpers = collectHelpers(parsed);
  return parsed.flatMap((p) => scanFile(p, helpers));
}

/** The program names the shell scripts check for, with the package a TOOLS entry names. */
export function shellChecks(file: string, text = readFileSync(file, 'utf8')): { where: string; name: string; pkg: string | null }[] {
  const out: { where: string; name: string; pkg: string | null }[] = [];
  const rel = relative(ROOT, file);
  const lines = text.split('\n');
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  lines.forEach((line, i) => {
    const loop = /^\s*for (\w+) in ([^;]+); do\b/.exec(line);
    const checked = loop?.[1] !== undefined && `${line}\n${lines[i + 1] ?? ''}`.includes(`command -v "$${loop[1]}"`);
    if (checked && loop?.[2]) for (const w of loop[2].trim().split(/\s+/)) if (!w.startsWith('$') && !w.startsWith('"')) out.push({ where: `${rel}:${i + 1}`, name: w, pkg: null });
    for (const m of line.matchAll(/command -v ([A-Za-z][\w.+-]*)/g)) if (m[1]) out.push({ where: `${rel}:${i + 1}`, name: m[1], pkg: null });
  });
  const tools = /^TOOLS=\(([^)]*)\)/m.exec(text);
  if (tools?.[1]) {
    for (const m of tools[1].matchAll(/(\S+):(\S+)/g)) {
      const path = m[1] ?? '';
      out.push({ where: `${rel}:${lineOf(tools.index + (m.index ?? 0))}`, name: path.slice(path.lastIndexOf('/') + 1), pkg: m[2] ?? null });
    }
  }
  const partclone = /^PARTCLONE_REQUIRED=\(([^)]*)\)/m.exec(text);
  if (partclone?.[1]) for (const fs of partclone[1].trim().split(/\s+/)) out.push({ where: `${rel}:${lineOf(partclone.index)}`, name: `partclone.${fs}`, pkg: 'partclone' });
  return out;
}

/** What `install-deps.sh --list` prints: the runtime and the test packages. */
export function installLists(output: string): { runtime: Set<string>; test: Set<string> } {
  const list = (role: string): Set<string> => {
    const m = new RegExp(`^${role}: (.*)$`, 'm').exec(output);
    if (!m?.[1]) throw new Error(`install-deps --list printed no '${role}:' line: ${output}`);
    return new Set(m[1].trim().split(/\s+/));
  };
  return { runtime: list('runtime'), test: list('test') };
}

/** The table's packages missing from install-deps' lists, and install-deps' packages the table does not explain. */
export function packageGaps(lists: { runtime: Set<string>; test: Set<string> }): string[] {
  const gaps: string[] = [];
  const explained = new Set<string>(Object.keys(FILE_PACKAGES));
  for (const [name, info] of Object.entries(PROGRAMS)) {
    explained.add(info.pkg);
    if (info.role === 'runtime' && !lists.runtime.has(info.pkg)) gaps.push(`${name}: runtime package ${info.pkg} is not in install-deps' runtime_pkgs`);
    if (info.role === 'test' && !lists.runtime.has(info.pkg) && !lists.test.has(info.pkg)) gaps.push(`${name}: test package ${info.pkg} is not in install-deps' test_pkgs`);
  }
  for (const [pkg, info] of Object.entries(FILE_PACKAGES)) {
    if (info.role === 'runtime' && !lists.runtime.has(pkg)) gaps.push(`${pkg} (${info.files}) is not in install-deps' runtime_pkgs`);
    if (info.role === 'test' && !lists.runtime.has(pkg) && !lists.test.has(pkg)) gaps.push(`${pkg} (${info.files}) is not in install-deps' test_pkgs`);
  }
  for (const pkg of [...lists.runtime, ...lists.test]) if (!explained.has(pkg)) gaps.push(`install-deps installs ${pkg}, which src/lib/programs.ts does not explain`);
  return gaps;
}

const format = (fs: Finding[]): string => fs.map((f) => `${f.where}: ${f.message}`).join('\n');

test('program() returns the name, and the running node for node', () => {
  assert.equal(program('tcpdump'), 'tcpdump');
  assert.equal(program('node'), process.execPath);
  const stray: string = 'tcpdumpx';
  assert.throws(() => program(stray as ProgramName), TypeError);
});

test('every spawn in src, test, bench and scripts takes a listed program', () => {
  const findings = scanSources();
  assert.equal(format(findings), '');
});

test('the scan finds a stray program: direct spawn, helper argv, wrapper, shell script', () => {
  const file = join(ROOT, 'test/lab/__stray__.ts');
  const text = [
    "import { spawn, execFile } from 'node:child_process';",
    "import { program } from '../../src/lib/programs.js';",
    "spawn('tcpdumpx', []);",
    "spawn(program('tcpdumpx' as 'tcpdump'), []);",
    "execFile(program('ip'), ['netns', 'exec', 'ns', 'dnsmasqx']);",
    "execFile(program('ip'), ['netns', 'exec', 'ns', 'taskset', '-c', '1', 'perfdhcpx']);",
    "execFile(program('sh'), ['-c', 'ls -l | grep x && seq 3']);",
    "declare const lab: { exec(h: string, a: readonly string[]): void };",
    "lab.exec('cli', ['timeout', '5', 'atftpx']);",
    "lab.exec('cli', ['tcpdumpy', '-i', 'eth0']);",
  ].join('\n');
  const findings = scanSources(new Map([[file, text]])).filter((f) => f.where.includes('__stray__'));
  const lines = findings.map((f) => Number(f.where.split(':').pop()));
  assert.deepEqual([...new Set(lines)], [3, 4, 5, 6, 7, 9, 10], format(findings));
  assert.match(format(findings), /'ls'.*\n.*'grep'/);
});

test('shellCommands() reads the command words of a script', () => {
  assert.deepEqual(shellCommands('fail=0; for i in $(seq 3); do curl -s x & done; for j in $(jobs -p); do wait $j || fail=1; done; exit $fail'), ['seq', 'curl']);
  assert.deepEqual(shellCommands(`"$@"; rc=$?; set -- $(cat /proc/$$/stat); echo "x" >&2; exit $rc`), ['cat']);
  assert.deepEqual(shellCommands('command -v \u0000'), []);
  assert.deepEqual(shellCommands("echo 'label: dos' | sfdisk -q /tmp/x"), ['sfdisk']);
});

/** Scripts that build test fixtures (only the lab tests run them): they may check for test programs. */
const TEST_SCRIPTS = new Set(['scripts/build-debian-image.sh', 'test/lab/bootenv/build.sh']);

test("the shell scripts' tool checks name listed programs (TOOLS: with the same package)", () => {
  const scripts = readdirSync(join(ROOT, 'scripts')).filter((f) => f.endsWith('.sh')).map((f) => join(ROOT, 'scripts', f));
  scripts.push(join(ROOT, 'test/lab/bootenv/build.sh'));
  const checks = scripts.flatMap((f) => shellChecks(f));
  assert.ok(checks.some((c) => c.name === 'depmod') && checks.some((c) => c.name === 'sfdisk' && c.pkg === 'fdisk'), 'build-bootenv.sh checks not found');
  const bad = checks.flatMap((c) => {
    if (!isProgramName(c.name)) return [`${c.where}: the script checks for '${c.name}', which src/lib/programs.ts does not list`];
    const info = PROGRAMS[c.name];
    if (c.pkg !== null && c.pkg !== info.pkg) return [`${c.where}: '${c.name}' is from ${c.pkg} there, from ${info.pkg} in src/lib/programs.ts`];
    if (info.role === 'test' && !TEST_SCRIPTS.has(c.where.replace(/:\d+$/, ''))) return [`${c.where}: '${c.name}' is needed by a script but is a test program in src/lib/programs.ts`];
    return [];
  });
  assert.deepEqual(bad, []);
});

test('install-deps installs every package of the table, for its role', () => {
  const out = execFileSync(program('bash'), [join(ROOT, 'scripts/install-deps.sh'), '--list'], { encoding: 'utf8' });
  assert.deepEqual(packageGaps(installLists(out)), []);
});

test('packageGaps() names a package install-deps lacks', () => {
  const lists = installLists(execFileSync(program('bash'), [join(ROOT, 'scripts/install-deps.sh'), '--list'], { encoding: 'utf8' }));
  lists.test.delete('tcpdump');
  lists.runtime.delete('fdisk');
  lists.test.add('cowsay');
  assert.deepEqual(packageGaps(lists).sort(), [
    'install-deps installs cowsay, which src/lib/programs.ts does not explain',
    "sfdisk: runtime package fdisk is not in install-deps' runtime_pkgs",
    "tcpdump: test package tcpdump is not in install-deps' test_pkgs",
  ]);
});
