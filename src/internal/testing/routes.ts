/**
 * Every wire API's fake routes, from the provider folders, in the provider table's order: the
 * fake server's alone, so that no path leads from the production entry to a fake.
 */
import { routes as anthropic } from "../providers/anthropic/fake.js"
import { routes as gemini } from "../providers/gemini/fake.js"
import { routes as ollama } from "../providers/ollama/fake.js"
import { routes as chat } from "../providers/openaiChat/fake.js"
import { routes as responses } from "../providers/openaiResponses/fake.js"
import { type Api, apiNames } from "../providers/registry.js"
import type { FakeRoute } from "./route.js"

/** One entry per API of the table: an API without fake routes does not compile. */
const byApi: { readonly [A in Api]: ReadonlyArray<FakeRoute> } = { chat, responses, anthropic, gemini, ollama }

/** The first whose `matches` accepts a path answers it. */
export const routes: ReadonlyArray<FakeRoute> = apiNames.flatMap((api) => byApi[api])
