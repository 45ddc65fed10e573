import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { withUserErrors } from '../../graphql/domain-error.js';
import { fromGlobalId } from '../../graphql/global-id.js';
import { userError, UserErrorCode } from '../../graphql/user-error.js';
import { loadKeyEncryptionKey } from '../../secrets/kek.js';
import { readerView } from '../readers.resolver.js';
import { findReaderFor } from '../readers.service.js';
import { provisionPsam } from './psam-provisioning.service.js';
import { ProvisionTerminalInput, ProvisionTerminalPayload } from './psam-provisioning.types.js';

@Resolver()
export class PsamProvisioningResolver {
  /** The keys are the card company's: only it provisions, and only terminals of its city (the operator cannot). */
  @Authorized('ISSUER', 'readers:manage')
  @Mutation(() => ProvisionTerminalPayload, {
    description:
      'The card company provisions a terminal’s software PSAM: its terminal number and the card company’s active PURCHASE master keys, sealed to the terminal’s encryption certificate and signed by the city’s host key; never readable outside the terminal. A terminal of the card company’s city, owned by it or by a merchant, ACTIVE; keys kept in an HSM are refused (FORBIDDEN_OPERATION). Scope readers:manage.',
  })
  async provisionTerminal(@Arg('input', () => ProvisionTerminalInput, { description: 'The terminal.' }) input: ProvisionTerminalInput, @Ctx() ctx: GraphQLContext): Promise<ProvisionTerminalPayload> {
    const none = { terminal: null, psam: null, keyVersions: [] };
    const terminal = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.terminal, 'Reader').id);
    if (!terminal) return { ...none, userErrors: [userError(UserErrorCode.NOT_FOUND, `no terminal ${input.terminal} of your city`, ['input', 'terminal'])] };
    return withUserErrors<ProvisionTerminalPayload>(async () => {
      const { psam, keyVersions } = await provisionPsam(ctx.em, { terminal, terminalGlobalId: input.terminal, cardCompanyId: ctx.principal!.tenantId!, clientId: ctx.principal!.clientId, kek: await loadKeyEncryptionKey(ctx.config), publicUrl: ctx.config.publicUrl });
      // What was sent, never what is in it.
      ctx.log.info({ terminal: terminal.id, terminalNumber: terminal.terminal_number, keyVersions }, 'terminal PSAM provisioned');
      return { terminal: readerView(terminal), psam, keyVersions, userErrors: [] };
    }, none);
  }
}
