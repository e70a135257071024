import type { Metadata } from "next";
import { AuthCard } from "@/components/auth/AuthCard";
import { AcceptInvite } from "@/components/auth/AcceptInvite";

export const metadata: Metadata = { title: "Invitation" };

export default async function InvitePage({ params }: PageProps<"/invite/[token]">) {
  const { token } = await params;
  return (
    <AuthCard title="Invitation">
      <AcceptInvite token={token} />
    </AuthCard>
  );
}
