import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configPath } from './config.js';

describe('where the CLI keeps its contexts (and their tokens)', () => {
  const home = join(homedir(), '.config', 'kumo', 'config.json');

  it('takes KUMO_CONFIG, then an absolute XDG_CONFIG_HOME, then ~/.config', () => {
    expect(configPath({ KUMO_CONFIG: '/etc/kumo.json', XDG_CONFIG_HOME: '/x' })).toBe('/etc/kumo.json');
    expect(configPath({ XDG_CONFIG_HOME: '/srv/conf' })).toBe('/srv/conf/kumo/config.json');
    expect(configPath({})).toBe(home);
  });

  it('counts an empty or relative XDG_CONFIG_HOME as unset, never the current directory', () => {
    expect(configPath({ XDG_CONFIG_HOME: '' })).toBe(home);
    expect(configPath({ XDG_CONFIG_HOME: 'conf' })).toBe(home);
    expect(configPath({ KUMO_CONFIG: '', XDG_CONFIG_HOME: '' })).toBe(home);
  });
});
