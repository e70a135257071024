import type { Metadata } from "next";
import { Suspense } from "react";
import { AuthCard } from "@/components/auth/AuthCard";
import { ResetPasswordForm } from "@/components/auth/RecoveryForms";

export const metadata: Metadata = { title: "Set a new password" };

export default function Page() {
  return (
    <AuthCard title="Set a new password">
      <Suspense>
        <ResetPasswordForm />
      </Suspense>
    </AuthCard>
  );
}
