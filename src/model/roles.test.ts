import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aRole, isRole, isRouteRole, lowerRole, roleAtLeast, roleOf, ROLES } from './roles.js';

test('roleAtLeast() orders viewer < operator < admin, each role including the ones below', () => {
  const expected: Record<string, boolean> = {
    'viewer>=viewer': true,
    'viewer>=operator': false,
    'viewer>=admin': false,
    'operator>=viewer': true,
    'operator>=operator': true,
    'operator>=admin': false,
    'admin>=viewer': true,
    'admin>=operator': true,
    'admin>=admin': true,
  };
  for (const have of ROLES) for (const need of ROLES) assert.equal(roleAtLeast(have, need), expected[`${have}>=${need}`], `${have} >= ${need}`);
});

test('lowerRole() is the lower of two roles, in either order', () => {
  assert.equal(lowerRole('admin', 'viewer'), 'viewer');
  assert.equal(lowerRole('viewer', 'admin'), 'viewer');
  assert.equal(lowerRole('operator', 'admin'), 'operator');
  assert.equal(lowerRole('admin', 'admin'), 'admin');
});

test('isRole(), isRouteRole() and roleOf() accept the known names only', () => {
  for (const r of ROLES) {
    assert.ok(isRole(r));
    assert.ok(isRouteRole(r));
    assert.equal(roleOf(r), r);
  }
  assert.ok(!isRole('public'));
  assert.ok(isRouteRole('public'));
  for (const v of ['Admin', 'root', '', null, undefined, 1, {}]) {
    assert.ok(!isRole(v), String(v));
    assert.ok(!isRouteRole(v), String(v));
  }
  assert.throws(() => roleOf('root'), /Unknown role "root": expected viewer, operator, admin/);
});

test('aRole() puts the article in front', () => {
  assert.deepEqual(ROLES.map(aRole), ['a viewer', 'an operator', 'an admin']);
});
