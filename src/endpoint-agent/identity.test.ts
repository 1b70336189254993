import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sameMachine } from '../model/endpoint.js';
import { linuxIdentity, machineMacs, prettyName } from './identity.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function fakeRoot(nics: Record<string, string>, extra: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'fa-id-'));
  roots.push(root);
  for (const [name, addr] of Object.entries(nics)) {
    mkdirSync(join(root, 'sys/class/net', name), { recursive: true });
    writeFileSync(join(root, 'sys/class/net', name, 'address'), `${addr}\n`);
  }
  for (const [path, text] of Object.entries(extra)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('machineMacs() skips lo, all-zero and non-Ethernet addresses, keeps veth, sorted and lower case', () => {
  const root = fakeRoot({
    lo: '00:00:00:00:00:00',
    eth0: '52:54:00:AB:CD:EF',
    veth0: '0a:11:22:33:44:55',
    ifb0: '00:00:00:00:00:00',
    sit0: '00:00:00:00',
    ib0: '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c',
    br0: '52:54:00:ab:cd:ef',
  });
  assert.deepEqual(machineMacs(root), ['0a:11:22:33:44:55', '52:54:00:ab:cd:ef']);
  assert.deepEqual(machineMacs(join(root, 'nothing')), []);
});

test('linuxIdentity() reads SMBIOS, host name and PRETTY_NAME under the root', () => {
  const root = fakeRoot(
    { veth0: '0a:11:22:33:44:55' },
    {
      'sys/class/dmi/id/product_uuid': 'A1B2C3D4-0000-1111-2222-333344445555\n',
      'sys/class/dmi/id/product_serial': 'SN-42\n',
      'proc/sys/kernel/hostname': 'pc-017\n',
      'etc/os-release': 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    },
  );
  assert.deepEqual(linuxIdentity(root, '0.1.0'), {
    macs: ['0a:11:22:33:44:55'],
    smbiosUuid: 'a1b2c3d4-0000-1111-2222-333344445555',
    smbiosSerial: 'SN-42',
    hostname: 'pc-017',
    os: 'Debian GNU/Linux 12 (bookworm)',
    agentVersion: '0.1.0',
  });
  const bare = linuxIdentity(fakeRoot({}), '0.1.0');
  assert.deepEqual(bare, { macs: [], smbiosUuid: null, smbiosSerial: null, hostname: null, os: null, agentVersion: '0.1.0' });
});

test('a cloned state directory on another machine is not the same machine', () => {
  const a = linuxIdentity(fakeRoot({ eth0: '52:54:00:00:00:01' }, { 'sys/class/dmi/id/product_uuid': 'uuid-a' }), '1');
  const aLater = linuxIdentity(fakeRoot({ eth0: '52:54:00:00:00:01', veth9: '0a:00:00:00:00:09' }, { 'sys/class/dmi/id/product_uuid': 'UUID-A' }), '1');
  const clone = linuxIdentity(fakeRoot({ eth0: '52:54:00:00:00:02' }, { 'sys/class/dmi/id/product_uuid': 'uuid-b' }), '1');
  assert.equal(sameMachine(a, aLater), true);
  assert.equal(sameMachine(a, clone), false);
});

test('prettyName() unquotes and strips control characters', () => {
  assert.equal(prettyName("PRETTY_NAME='Ubuntu 24.04 LTS'\n"), 'Ubuntu 24.04 LTS');
  assert.equal(prettyName('PRETTY_NAME=Alpine\n'), 'Alpine');
  assert.equal(prettyName('PRETTY_NAME="a \\"b\\""'), 'a "b"');
  assert.equal(prettyName('NAME=x'), null);
});
