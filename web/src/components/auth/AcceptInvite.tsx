"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useMutation, useQuery } from "urql";
import { Button, ErrorAlert, Loading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { useSession } from "@/lib/session";

const InvitePreview = graphql(`
  query InvitePreview($token: String!) {
    invite(token: $token) {
      teamName
      role
      expiresAt
    }
  }
`);

const AcceptInviteMutation = graphql(`
  mutation AcceptInvite($token: String!) {
    acceptInvite(token: $token) {
      role
      team {
        id
        name
      }
    }
  }
`);

const TEAM_KEY = "haunted.team";

export function AcceptInvite({ token }: { token: string }) {
  const { status, session } = useSession();
  const router = useRouter();
  const [{ data, error, fetching }] = useQuery({ query: InvitePreview, variables: { token } });
  const [, accept] = useMutation(AcceptInviteMutation);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [busy, setBusy] = useState(false);
  const here = `/invite/${encodeURIComponent(token)}`;

  if (fetching && !data) return <Loading />;
  if (!data) return <ErrorAlert errors={fromCombined(error)} />;
  const { teamName, role } = data.invite;

  const onAccept = async () => {
    setErrors([]);
    setBusy(true);
    const result = await accept({ token });
    setBusy(false);
    if (result.error || !result.data) {
      setErrors(fromCombined(result.error));
      return;
    }
    try {
      localStorage.setItem(TEAM_KEY, result.data.acceptInvite.team.id);
    } catch {
      /* storage may be unavailable */
    }
    router.replace("/app/team");
  };

  return (
    <div className="flex flex-col gap-4">
      <p>
        You are invited to join <strong>{teamName}</strong> as <strong>{role}</strong>.
      </p>
      <ErrorAlert errors={errors} />
      {status === "signedIn" ? (
        <>
          <p className="text-sm text-slate-700">Signed in as {session?.user.email}.</p>
          <Button onClick={() => void onAccept()} disabled={busy}>
            Accept invite
          </Button>
        </>
      ) : status === "loading" ? (
        <Loading />
      ) : (
        <>
          <Button onClick={() => router.push(`/login?next=${encodeURIComponent(here)}`)}>Accept invite</Button>
          <p className="text-sm text-slate-700">
            Log in first, or{" "}
            <Link className="text-indigo-700 underline" href={`/signup?next=${encodeURIComponent(here)}`}>
              create an account
            </Link>{" "}
            with the email address the invite was sent to.
          </p>
        </>
      )}
    </div>
  );
}
