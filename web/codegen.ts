import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed operations from the gateway's own schema files: `npm run codegen`
// rewrites src/gql/, `npm run codegen:check` fails when it is out of date.
const config: CodegenConfig = {
  schema: "../gateway/schema/*.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { DateTime: "string", JSON: "unknown" },
      },
    },
  },
};

export default config;
