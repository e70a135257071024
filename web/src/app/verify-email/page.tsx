import type { Metadata } from "next";
import { Suspense } from "react";
import { AuthCard } from "@/components/auth/AuthCard";
import { VerifyEmailOutcome } from "@/components/auth/RecoveryForms";

export const metadata: Metadata = { title: "Verify your email" };

export default function Page() {
  return (
    <AuthCard title="Verify your email">
      <Suspense>
        <VerifyEmailOutcome />
      </Suspense>
    </AuthCard>
  );
}
