"use client";

import type { ReactNode } from "react";
import { SessionProvider } from "@/lib/session";
import { GraphQLProvider } from "@/lib/urql";

export function Providers({ children }: { children: ReactNode }) {
  return (
    <SessionProvider>
      <GraphQLProvider>{children}</GraphQLProvider>
    </SessionProvider>
  );
}
