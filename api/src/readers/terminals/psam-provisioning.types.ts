import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { UserError } from '../../graphql/user-error.js';
import { ReaderType } from '../readers.types.js';

@InputType({ description: 'The terminal whose software PSAM to provision.' })
export class ProvisionTerminalInput {
  @Field(() => ID, { description: 'Global id of the Reader: a terminal (a reader of the card company or of a merchant of its city).' })
  terminal!: string;
}

@ObjectType('PsamPackage', { description: 'A terminal’s PSAM keys and terminal number, sealed to its encryption certificate and signed by the city’s host key (docs/settlement.md, "The terminal kit"). Nothing in it is readable outside the terminal.' })
export class PsamPackageType {
  @Field({ description: 'JSON the host signed: `protocol` (`onecard-psam-v1`), `terminal`, `terminalNumber`, `keyVersions`, `issuedAt`, and `sealed` (`wrappedKey`, `iv`, `ciphertext`, `tag`: AES-256-GCM under a key wrapped with RSA-OAEP SHA-256 to the terminal’s encryption certificate; associated data `onecard-psam-v1\\n<terminal>\\n<terminalNumber>`).' })
  payload!: string;

  @Field({ description: 'Base64 ECDSA P-256 / SHA-256 (DER) over the payload’s UTF-8 bytes, by the city’s host key.' })
  signature!: string;

  @Field(() => [String], { description: 'PEM: the host certificate, then the city working CA’s; the terminal checks it up to the root it pinned at registration.' })
  certificateChain!: string[];
}

@ObjectType({ description: 'The terminal’s sealed PSAM package, or why not.' })
export class ProvisionTerminalPayload {
  @Field(() => ReaderType, { nullable: true, description: 'The terminal provisioned; null when refused.' })
  terminal!: ReaderType | null;

  @Field(() => PsamPackageType, { nullable: true, description: 'The sealed, signed package for the terminal to install; null when refused.' })
  psam!: PsamPackageType | null;

  @Field(() => [Int], { description: 'The PURCHASE master key versions the package holds (the card company’s active ones).' })
  keyVersions!: number[];

  @Field(() => [UserError], { description: 'Why nothing was provisioned (NOT_FOUND, INVALID_INPUT, FORBIDDEN_OPERATION); empty on success.' })
  userErrors!: UserError[];
}
