/** The file scripts/operations.mjs writes in src/operations. */
export const GENERATED_FILE: string;
/** How deep below the root field a generated selection goes. */
export const MAX_LEVEL: number;
/** The root fields (`Query.x`, `Mutation.y`) the operations of a document select. */
export function rootFieldsSelected(documentText: string): Set<string>;
/** The generated document for the root fields no hand-written document (file name → text) selects. */
export function generateOperations(schemaText: string, handWritten: Record<string, string>): { text: string; generated: string[] };
