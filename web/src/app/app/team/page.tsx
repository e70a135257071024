"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { useMutation, useQuery } from "urql";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Cell, Table } from "@/components/Table";
import { Button, Dialog, ErrorAlert, Loading, PageHeading, SelectField, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { useTeam } from "@/lib/team";

const ROLES = ["owner", "admin", "member", "viewer"] as const;

const TeamQuery = graphql(`
  query TeamPage($teamId: ID!) {
    team(id: $teamId) {
      id
      name
      members {
        userId
        email
        role
      }
    }
  }
`);

const PendingInvites = graphql(`
  query PendingInvites($teamId: ID!) {
    invites(teamId: $teamId) {
      id
      email
      role
      expiresAt
    }
  }
`);

const RevokeInvite = graphql(`
  mutation RevokeInvite($id: ID!) {
    revokeInvite(id: $id)
  }
`);

const InviteMember = graphql(`
  mutation InviteMember($teamId: ID!, $email: String!, $role: String!) {
    inviteMember(teamId: $teamId, email: $email, role: $role) {
      id
      role
      expiresAt
      token
    }
  }
`);

const ChangeRole = graphql(`
  mutation ChangeRole($teamId: ID!, $userId: ID!, $role: String!) {
    changeRole(teamId: $teamId, userId: $userId, role: $role) {
      role
    }
  }
`);

const RemoveMember = graphql(`
  mutation RemoveMember($teamId: ID!, $userId: ID!) {
    removeMember(teamId: $teamId, userId: $userId)
  }
`);

export default function TeamPage() {
  const { current, userId, refetch: refetchMe } = useTeam();
  const teamId = current?.id ?? "";
  const [{ data, error, fetching }, reexecute] = useQuery({ query: TeamQuery, variables: { teamId }, pause: !teamId });
  const [, changeRole] = useMutation(ChangeRole);
  const [, removeMember] = useMutation(RemoveMember);
  const [, revokeInvite] = useMutation(RevokeInvite);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [status, setStatus] = useState("");
  const [inviting, setInviting] = useState(false);
  const manages = current?.role === "owner" || current?.role === "admin";
  const [invites, reexecuteInvites] = useQuery({ query: PendingInvites, variables: { teamId }, pause: !teamId || !manages });
  const reload = () => {
    reexecute({ requestPolicy: "network-only" });
    if (manages) reexecuteInvites({ requestPolicy: "network-only" });
  };
  const onRevokeInvite = async (id: string, email: string) => {
    setErrors([]);
    const result = await revokeInvite({ id });
    if (result.error) setErrors(fromCombined(result.error));
    else setStatus(`The invite for ${email} was revoked.`);
    reload();
  };

  const onRole = async (memberId: string, email: string, role: string) => {
    setErrors([]);
    const result = await changeRole({ teamId, userId: memberId, role });
    if (result.error) setErrors(fromCombined(result.error));
    else setStatus(`${email} is now ${role}.`);
    reload();
  };
  const onRemove = async (memberId: string, email: string) => {
    setErrors([]);
    const result = await removeMember({ teamId, userId: memberId });
    if (result.error) {
      setErrors(fromCombined(result.error));
      return;
    }
    setStatus(`${email} was removed.`);
    if (memberId === userId) refetchMe();
    reload();
  };

  return (
    <>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <PageHeading>Team</PageHeading>
        <Button onClick={() => setInviting(true)}>Invite member</Button>
      </div>
      {current ? <p className="text-sm text-slate-700">{current.name} · your role: {current.role}</p> : null}
      <ErrorAlert errors={[...fromCombined(error), ...fromCombined(invites.error), ...errors]} />
      <p role="status" className="text-sm text-slate-700">
        {status}
      </p>
      {data?.team ? (
        <Table name="Members" columns={["Email", "Role", "Actions"]}>
          {data.team.members.map((member) => (
            <tr key={member.userId}>
              <Cell header>{member.email}</Cell>
              <Cell>
                {manages ? (
                  <>
                    <label className="sr-only" htmlFor={`role-${member.userId}`}>
                      {`Role for ${member.email}`}
                    </label>
                    <select
                      id={`role-${member.userId}`}
                      value={member.role}
                      onChange={(event) => void onRole(member.userId, member.email, event.target.value)}
                      className="rounded-md border border-slate-300 bg-white px-2 py-1"
                    >
                      {ROLES.map((role) => (
                        <option key={role} value={role}>
                          {role}
                        </option>
                      ))}
                    </select>
                  </>
                ) : (
                  member.role
                )}
              </Cell>
              <Cell>
                {manages || member.userId === userId ? (
                  <Button
                    variant="secondary"
                    aria-label={`Remove ${member.email}`}
                    onClick={() => void onRemove(member.userId, member.email)}
                  >
                    Remove
                  </Button>
                ) : null}
              </Cell>
            </tr>
          ))}
        </Table>
      ) : fetching ? (
        <Loading />
      ) : null}
      {manages && invites.data ? (
        <section className="flex flex-col gap-2">
          <h2 className="text-lg font-semibold">Pending invites</h2>
          <Table
            name="Pending invites"
            columns={["Email", "Role", "Expires", "Actions"]}
            empty={invites.data.invites.length === 0 ? "No pending invites." : undefined}
          >
            {invites.data.invites.map((invite) => {
              const email = invite.email ?? "(address not kept)";
              return (
                <tr key={invite.id}>
                  <Cell header>{email}</Cell>
                  <Cell>{invite.role}</Cell>
                  <Cell>{new Date(invite.expiresAt).toLocaleDateString()}</Cell>
                  <Cell>
                    <Button variant="secondary" aria-label={`Revoke ${email}`} onClick={() => void onRevokeInvite(invite.id, email)}>
                      Revoke
                    </Button>
                  </Cell>
                </tr>
              );
            })}
          </Table>
        </section>
      ) : null}
      <InviteDialog
        open={inviting}
        teamId={teamId}
        onClose={() => {
          setInviting(false);
          reload();
        }}
      />
    </>
  );
}

const inviteSchema = z.object({
  email: z.string().trim().min(1, "Enter an email address"),
  role: z.enum(ROLES),
});
type InviteValues = z.infer<typeof inviteSchema>;

function InviteDialog({ open, teamId, onClose }: { open: boolean; teamId: string; onClose: () => void }) {
  const [, invite] = useMutation(InviteMember);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [link, setLink] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const { register, handleSubmit, setError, formState, reset } = useForm<InviteValues>({
    resolver: zodResolver(inviteSchema),
    defaultValues: { email: "", role: "member" },
  });
  const close = () => {
    reset();
    setLink(null);
    setErrors([]);
    setCopied(false);
    onClose();
  };
  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await invite({ teamId, ...values });
    if (result.error || !result.data) {
      setErrors(applyServerErrors(fromCombined(result.error), ["email", "role"], setError));
      return;
    }
    const token = result.data.inviteMember.token;
    if (token) setLink(`${window.location.origin}/invite/${encodeURIComponent(token)}`);
  });
  return (
    <Dialog open={open} title="Invite member" onClose={close}>
      {link ? (
        <div className="flex flex-col gap-3">
          <p className="text-sm">Send this link to the person you invited. It is shown once and works for their email only.</p>
          <TextField label="Invite link" readOnly value={link} onFocus={(event) => event.currentTarget.select()} />
          <div className="flex gap-2">
            <Button
              onClick={() => {
                void navigator.clipboard?.writeText(link).then(() => setCopied(true), () => setCopied(false));
              }}
            >
              Copy link
            </Button>
            <Button variant="secondary" onClick={close}>
              Done
            </Button>
          </div>
          <p role="status" className="text-sm text-slate-700">
            {copied ? "Copied." : ""}
          </p>
        </div>
      ) : (
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <ErrorAlert errors={errors} />
          <TextField label="Email" type="email" error={formState.errors.email?.message} {...register("email")} />
          <SelectField label="Role" error={formState.errors.role?.message} {...register("role")}>
            {ROLES.map((role) => (
              <option key={role} value={role}>
                {role}
              </option>
            ))}
          </SelectField>
          <Button type="submit" disabled={formState.isSubmitting}>
            Send invite
          </Button>
        </form>
      )}
    </Dialog>
  );
}
