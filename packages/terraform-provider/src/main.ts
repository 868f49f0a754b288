// terraform-provider-kumo: started by Terraform (docs/terraform.md), never by hand.
import { NotStartedByTerraform, servePlugin } from './plugin-server.js';
import { registerProvider } from './provider.js';

servePlugin(registerProvider).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(err instanceof NotStartedByTerraform ? 1 : 70);
});
