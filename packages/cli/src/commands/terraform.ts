import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import type { Runtime } from '../core/runtime.js';
import { CLIENT_VERSION } from './version.js';

/** The provider's address in Terraform configurations: `source = "kumo.dev/kumo/kumo"`. */
export const PROVIDER_SOURCE = 'kumo.dev/kumo/kumo';

/** The provider bundle the build puts beside this command's own (packages/cli/build.mjs). */
const BUNDLE = fileURLToPath(
  new URL('../../../terraform-provider/dist/terraform-provider-kumo.mjs', import.meta.url),
);

/** Terraform's name of this machine's platform, e.g. linux_amd64. */
function platform(): string {
  const arch =
    { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }[process.arch as string] ?? process.arch;
  return `${process.platform}_${arch}`;
}

/** `kumo terraform install`: the provider where Terraform finds it, offline. */
export function registerTerraformCommands(program: Command, runtime: Runtime): void {
  const terraform = program
    .command('terraform')
    .description('The Terraform provider for Kumo (docs/terraform.md).');
  terraform
    .command('install')
    .description(
      `Installs the Kumo provider (${PROVIDER_SOURCE}, version ${CLIENT_VERSION}) into a Terraform plugin directory, so that \`terraform init\` finds it without a registry.`,
    )
    .option(
      '--dir <dir>',
      'the plugin directory: ~/.terraform.d/plugins (found by Terraform without any configuration), or one a filesystem_mirror names',
    )
    .addHelpText(
      'after',
      `\nExamples:\n  kumo terraform install\n  kumo terraform install --dir /srv/terraform/plugins\n\nIn a configuration:\n  terraform {\n    required_providers {\n      kumo = { source = "${PROVIDER_SOURCE}" }\n    }\n  }`,
    )
    .action((o: { dir?: string }) => {
      if (!existsSync(BUNDLE))
        throw new CliError(
          `The provider is not built (${BUNDLE} is missing): run \`npm run build:cli\` in the Kumo checkout.`,
          EXIT.failure,
        );
      const root = o.dir ?? join(runtime.env.HOME ?? homedir(), '.terraform.d', 'plugins');
      const dir = join(root, ...PROVIDER_SOURCE.split('/'), CLIENT_VERSION, platform());
      mkdirSync(dir, { recursive: true });
      // Not named terraform-provider-…: Terraform runs the first file of that name it finds here.
      copyFileSync(BUNDLE, join(dir, 'kumo-provider.mjs'));
      // Terraform runs the plugin as an executable: this one starts the provider with this Node.
      const executable = join(dir, `terraform-provider-kumo_v${CLIENT_VERSION}`);
      writeFileSync(
        executable,
        `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$(dirname "$0")/kumo-provider.mjs" "$@"\n`,
      );
      chmodSync(executable, 0o755);
      runtime.stdout.write(
        `installed ${PROVIDER_SOURCE} ${CLIENT_VERSION} (${platform()}) in ${dir}\n` +
          (o.dir
            ? `Terraform finds it with a CLI configuration (TF_CLI_CONFIG_FILE) holding:\n  provider_installation {\n    filesystem_mirror {\n      path    = ${JSON.stringify(root)}\n      include = ["${PROVIDER_SOURCE}"]\n    }\n    direct {\n      exclude = ["${PROVIDER_SOURCE}"]\n    }\n  }\n`
            : ''),
      );
    });
}
