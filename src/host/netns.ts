/**
 * The network namespace opd works in (--netns / OPD_NETNS), shared by the net and firewall
 * plugins (a plugin never imports another).
 */
import type { Settings } from '../core/plugin.js';
import { OpdError } from '../core/errors.js';
import { settingOf } from '../core/manifest.js';
import { NETNS } from './settings.js';

/** The network namespace setting (--netns / OPD_NETNS), validated like an interface name. */
export function netnsOf(settings: Settings): string | undefined {
  const ns = settingOf(settings, NETNS);
  if (ns === undefined || ns === '') return undefined;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(ns) || ns === '..')
    throw new OpdError('usage', `invalid network namespace name ${JSON.stringify(ns)}`, {
      hint: 'a namespace name is letters, digits and _ . - (see `ip netns list`)',
    });
  return ns;
}
