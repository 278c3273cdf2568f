/**
 * op-dbus's own documents (test/fixtures/opdbus, sources in its README) through `opd validate`:
 * each is accepted (exit 0) with a warning for every field opd accepts but does not act on, or
 * refused (exit 65) with a message that names the op-dbus feature and what to use instead.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT, doc, opd, tmp } from '../helpers/opd.js';

const DIR = join(ROOT, 'test/fixtures/opdbus');

interface Expect {
  /** accepted: exit 0 and these warnings (each regex matches one warning line) */
  warnings?: RegExp[];
  /** refused: exit 65 and every regex matches the output */
  refused?: RegExp[];
}

const NOTE = /op-dbus note keys? ignored \(_comment/;
const TABLE: Record<string, Expect> = {
  'example-state.json': { warnings: [] },
  'templates/ovs-bridge-basic.json': {
    warnings: [
      NOTE,
      /ipv4\.dns: op-dbus ipv4\.dns \(8\.8\.8\.8, 8\.8\.4\.4\) is accepted but net does not act on it.*plugins\.dns/,
    ],
  },
  'templates/ovs-bridge-with-internal-port.json': {
    warnings: [NOTE, /ovsbr0\.ipv4\.enabled: ipv4\.enabled: false: every address .* is removed/],
  },
  'templates/ovs-bridge-with-dhcp.json': {
    refused: [
      /:18:21: plugins\.net\.interfaces\.ovsbr0\.ipv4\.dhcp: op-dbus ipv4\.dhcp: true is not supported.*systemd unit/,
    ],
  },
  'templates/ovs-add-port-to-existing-bridge.json': { warnings: [NOTE] },
  'templates/ovs-bridge-multiple-ports.json': { warnings: [NOTE] },
  'states/network-ovs-bridge.json': {
    warnings: [/a bare op-dbus `net` plugin body: read as \{"version": 1, "plugins": \{"net": …\}\}/],
  },
  'states/complete-system-state.json': {
    refused: [
      /version: expected 1, got 2/,
      /system: op-dbus `system` is not supported.*files plugin/,
      /blockchain: .*audit trail/,
      /plugins\.net\.enabled: op-dbus plugin setting `enabled` is not state/,
      /plugins\.netmaker: op-dbus plugin `netmaker` is not supported/,
      /systemd: a plugin section `systemd` at the top level.*move it under plugins/,
    ],
  },
  'states/deploy-workflow.json': {
    refused: [/workflow: op-dbus `workflow` is not supported.*no workflow engine.*depends_on/],
  },
  'states/full-system-workflow.json': { refused: [/workflow: op-dbus `workflow` is not supported/] },
  'states/master-deploy-workflow.json': {
    refused: [/workflow: op-dbus `workflow` is not supported/, /deployment_targets_example/],
  },
  'states/network-workflow.json': { refused: [/workflow: op-dbus `workflow` is not supported/] },
  'states/privacy-network-workflow.json': { refused: [/workflow: op-dbus `workflow` is not supported/] },
  'states/mcp-config.json': { refused: [/mcp: op-dbus `mcp` is not supported.*no MCP server/] },
  'states/role-masks.json': { refused: [/roles: op-dbus `roles` is not supported.*one document per role/] },
  'examples/openflow-state.json': {
    refused: [/plugins\.openflow\.enable_security_flows: .*opd does not generate them/],
  },
  'examples/complete-proxmox-install.json': {
    refused: [
      /bootstrap: op-dbus `bootstrap` is not supported/,
      /plugins\.packagekit\.repositories: .*plugins\.files/,
      /plugins\.packagekit\.manifest:/,
      /plugins\.network: op-dbus plugin `network` is not supported.*plugins\.ovs/,
      /plugins\.systemd\.services: op-dbus `systemd\.services` is not supported.*units/,
      /plugins\.users\.accounts: op-dbus `users\.accounts`.*users\.users/,
      /plugins\.firewall\.rules: .*firewall\.tables/,
      /plugins\.systemd\.comment: unknown key "comment" \(fix: .*rename it "_comment"/,
    ],
  },
  'examples/complete-proxmox-pve9-install.json': {
    refused: [
      /bootstrap: op-dbus `bootstrap`/,
      /plugins\.network: op-dbus plugin `network`/,
      /plugins\.packagekit\.repositories/,
    ],
  },
  'docs/container-netmaker.json': {
    warnings: [
      /properties\.network_type: network_type: netmaker: the container is put on the mesh bridge.*does not enroll/,
    ],
  },
  'docs/container-bridge.json': { warnings: [] },
  'docs/lxc-netmaker-template.json': {
    refused: [
      /properties\.template: Proxmox template "local-btrfs:vztmpl\/debian-13-netmaker_custom\.tar\.zst" is not on this host \(looked in .*\).*pveam download/,
    ],
  },
  'docs/packagekit-proxmox-ve.json': { warnings: [/op-dbus `provider` \(apt\) ignored on 6 packages/] },
  'docs/packagekit-plugin-doc-comment.json': { warnings: [/op-dbus `provider` \(apt\) ignored on 2 packages/] },
  'nix/dependencies-md-full-mode.json': { warnings: [] },
  'nix/proxmox-md-full-mode.json': {
    warnings: [
      /template "debian-12" read as the LXC download template/,
      /template "debian-12"/,
      /template "debian-12"/,
    ],
  },
  'nix/module-default-full.json': { warnings: [] },
  'nix/module-default-standalone.json': { warnings: [] },
  'nix/module-default-agent.json': { warnings: [] },
};

function fixtures(dir = DIR): string[] {
  return readdirSync(dir)
    .flatMap((f) =>
      statSync(join(dir, f)).isDirectory()
        ? fixtures(join(dir, f))
        : f.endsWith('.json')
          ? [relative(DIR, join(dir, f))]
          : [],
    )
    .sort();
}

describe("op-dbus's own documents", () => {
  it('has an expectation for every fixture and a fixture for every expectation', () => {
    expect(fixtures()).toEqual(Object.keys(TABLE).sort());
  });

  for (const name of Object.keys(TABLE).sort()) {
    const e = TABLE[name];
    it(`${name} is ${e.refused ? 'refused by name' : 'accepted'}`, async () => {
      const r = await opd(['validate', join(DIR, name)]);
      const out = r.stdout + r.stderr;
      if (e.refused) {
        expect(r.code, out).toBe(65);
        for (const re of e.refused) expect(out).toMatch(re);
        expect(out).not.toMatch(/\n\s+at /); // no stack trace
        return;
      }
      expect(r.code, out).toBe(0);
      expect(r.stdout).toMatch(/^ok: /);
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('opd: warning: '));
      expect(warnings, r.stderr).toHaveLength(e.warnings!.length);
      e.warnings!.forEach((re, i) => expect(warnings[i]).toMatch(re));
      // every warning is located in the document
      for (const w of warnings)
        expect(w).toMatch(
          new RegExp(`^opd: warning: ${join(DIR, name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `),
        );
    });
  }
});

describe('op-dbus document forms', () => {
  it("takes openflow-state.json's socket_ports as internal ports, its controller_endpoint as the bridge's controller and its cookies as warnings: only enable_security_flows is refused", async () => {
    const r = await opd(['validate', join(DIR, 'examples/openflow-state.json')]);
    expect(r.code).toBe(65);
    expect(r.stdout + r.stderr).not.toMatch(/socket_ports|cookie|controller/);
    expect((r.stdout + r.stderr).match(/^\s+\S+openflow-state\.json:\d+:\d+: /gm)).toHaveLength(1);
    // without op-dbus's security flows (enable_security_flows: false) the document is accepted
    const text = readFileSync(join(DIR, 'examples/openflow-state.json'), 'utf8').replace(
      '"openflow": {',
      '"openflow": {\n      "enable_security_flows": false,',
    );
    const ok = await opd(['validate', doc(text, tmp(), 'openflow-state.json')]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok: .*\(2 resources in openflow, ovs\)/);
    expect(ok.stderr).toMatch(/flows\[0\]\.cookie: cookie 100 is not used/);
  });

  it('reads a .json file as JSON: a trailing comma is an error with line and column', async () => {
    const f = doc('{\n  "version": 1,\n  "plugins": {},\n}\n', tmp(), 'state.json');
    const r = await opd(['validate', f]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:1: \\(document root\\): JSON syntax error`),
    );
    // the same text as YAML is fine
    expect((await opd(['validate', doc('{"version": 1, "plugins": {},}\n')])).code).toBe(0);
  });

  it('blames type: ovs-port on the right key: a missing parent bridge, not an unknown key', async () => {
    const f = doc(
      JSON.stringify(
        {
          version: 1,
          plugins: {
            net: {
              interfaces: [
                { name: 'p0', type: 'ovs-port', ipv4: { enabled: true, address: [{ ip: '10.9.0.1', prefix: 24 }] } },
              ],
            },
          },
        },
        null,
        2,
      ),
      tmp(),
      'state.json',
    );
    const r = await opd(['validate', f]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      /plugins\.net\.interfaces\[0\]\.type: op-dbus ovs-port "p0" names no parent bridge \(fix: add properties\.parent_bridge/,
    );
    expect(r.stderr).not.toMatch(/unknown key "type"/);
  });

  it('names an unknown op-dbus interface type at its type key', async () => {
    const f = doc('version: 1\nplugins:\n  net:\n    interfaces:\n      - name: w0\n        type: wireguard\n');
    const r = await opd(['validate', f]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      /:6:15: plugins\.net\.interfaces\.w0\.type: op-dbus interface type "wireguard" is not supported/,
    );
  });

  it('maps packagekit ensure installed/removed/latest to packages, warning that latest does not upgrade', async () => {
    const f = doc(
      'version: 1\nplugins:\n  packagekit:\n    packages:\n      htop: { ensure: installed, version: "3.2.2-2" }\n      nano: { ensure: removed }\n      curl: { ensure: latest }\n',
    );
    const r = await opd(['validate', f]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ok: .*\(3 resources in packages\)/);
    expect(r.stderr).toMatch(/:7:\d+: plugins\.packagekit\.packages\.curl\.ensure: ensure: latest read as installed/);
    const bad = await opd([
      'validate',
      doc('version: 1\nplugins:\n  packagekit:\n    packages:\n      htop: { ensure: purged }\n'),
    ]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toMatch(
      /plugins\.packagekit\.packages\.htop\.ensure: op-dbus ensure: "purged" is not one of installed, removed, latest/,
    );
  });

  it('refuses a bare plugin body that fits no plugin, showing the wrapping', async () => {
    const r = await opd(['validate', doc('{"flows": []}\n', tmp(), 'state.json')]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      /a bare plugin body \(keys "flows"\) fits no plugin \(fix: wrap it in the plugin's section: \{"version": 1, "plugins": \{"<plugin>": \{"flows": …\}\}\}\)/,
    );
  });

  it('prints the same warnings from opd diff (before reading the host)', async () => {
    const r = await opd(['diff', join(DIR, 'docs/packagekit-proxmox-ve.json')], {
      env: { OPD_PACKAGES_BACKEND: 'apt' },
    });
    expect(r.stderr).toMatch(/opd: warning: .*op-dbus `provider` \(apt\) ignored on 6 packages/);
  });
});
