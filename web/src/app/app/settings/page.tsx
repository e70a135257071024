"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { useMutation, useQuery, type CombinedError } from "urql";
import { z } from "zod";
import { applyServerErrors } from "@/components/forms";
import { Cell, Table } from "@/components/Table";
import { Button, CheckboxGroup, Dialog, ErrorAlert, Loading, PageHeading, ShownOnce, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { deviceName } from "@/lib/device";
import { fromCombined, type ServerError } from "@/lib/errors";
import { useSession } from "@/lib/session";
import { useTeam } from "@/lib/team";
import { DeleteAccountSection } from "./DeleteAccount";
import { ExportDataSection } from "./ExportData";
import { WebhooksSection } from "./Webhooks";

const SettingsQuery = graphql(`
  query Settings($teamId: ID) {
    sessions {
      id
      createdAt
      expiresAt
      current
      ip
      userAgent
    }
    apiKeys(teamId: $teamId) {
      id
      name
      permissions
      createdAt
      lastUsedAt
      revokedAt
    }
    me {
      id
      permissions
    }
  }
`);

const RevokeSession = graphql(`
  mutation RevokeSession($id: ID!) {
    revokeSession(id: $id)
  }
`);

const CreateApiKey = graphql(`
  mutation CreateApiKey($name: String!, $permissions: [String!]!, $teamId: ID) {
    createApiKey(name: $name, permissions: $permissions, teamId: $teamId) {
      key
      apiKey {
        id
        name
      }
    }
  }
`);

const ChangePassword = graphql(`
  mutation ChangePassword($current: String!, $new: String!) {
    changePassword(current: $current, new: $new)
  }
`);

const RevokeApiKey = graphql(`
  mutation RevokeApiKey($id: ID!) {
    revokeApiKey(id: $id)
  }
`);

function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "never";
}

export default function SettingsPage() {
  const { current } = useTeam();
  const { logOut } = useSession();
  const teamId = current?.id ?? null;
  const manages = current?.role === "owner" || current?.role === "admin";
  const [{ data, error, fetching }, reexecute] = useQuery({ query: SettingsQuery, variables: { teamId } });
  const [, revokeSession] = useMutation(RevokeSession);
  const [, revokeApiKey] = useMutation(RevokeApiKey);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [status, setStatus] = useState("");
  const [creating, setCreating] = useState(false);
  const [changing, setChanging] = useState(false);
  const reload = () => reexecute({ requestPolicy: "network-only" });

  // Two sessions from the same browser read alike: a short id tells them apart.
  const device = (session: { id: string; userAgent?: string | null }) =>
    `${deviceName(session.userAgent)} (${session.id.slice(0, 6)})`;

  // A row's action: the server's refusal in the alert, else what happened in the status.
  const act = async (answer: Promise<{ error?: CombinedError }>, done: string) => {
    setErrors([]);
    const result = await answer;
    if (result.error) setErrors(fromCombined(result.error));
    else setStatus(done);
    reload();
  };
  const onRevokeSession = (id: string, name: string) => act(revokeSession({ id }), `Session ${name} ended.`);
  const onRevokeKey = (id: string, name: string) => act(revokeApiKey({ id }), `API key ${name} revoked.`);

  const keyError = fromCombined(error).filter((e) => e.code === "FORBIDDEN");
  return (
    <>
      <PageHeading>Settings</PageHeading>
      <ErrorAlert errors={[...fromCombined(error).filter((e) => e.code !== "FORBIDDEN"), ...errors]} />
      <p role="status" className="text-sm text-slate-700">
        {status}
      </p>
      {!data && fetching ? <Loading /> : null}
      <section className="flex flex-col gap-3">
        <h2 className="text-lg font-semibold">Sessions</h2>
        {data ? (
          <Table name="Sessions" columns={["Device", "Address", "Started", "Expires", "Actions"]}>
            {data.sessions.map((session) => (
              <tr key={session.id}>
                <Cell header>
                  {device(session)}
                  {session.current ? <span className="ml-1 text-xs text-indigo-800">(this browser)</span> : null}
                </Cell>
                <Cell>{session.ip ?? ""}</Cell>
                <Cell>{when(session.createdAt)}</Cell>
                <Cell>{when(session.expiresAt)}</Cell>
                <Cell>
                  {session.current ? null : (
                    <Button
                      variant="secondary"
                      aria-label={`Revoke ${device(session)}`}
                      onClick={() => void onRevokeSession(session.id, device(session))}
                    >
                      Revoke
                    </Button>
                  )}
                </Cell>
              </tr>
            ))}
          </Table>
        ) : null}
      </section>
      <section className="flex flex-col gap-3">
        <div className="flex flex-wrap items-center justify-between gap-2">
          <h2 className="text-lg font-semibold">API keys</h2>
          <Button onClick={() => setCreating(true)}>Create API key</Button>
        </div>
        {!manages ? <p className="text-sm text-slate-700">Only owners and admins manage this team&apos;s API keys.</p> : null}
        {keyError.length && manages ? <ErrorAlert errors={keyError} /> : null}
        {data?.apiKeys ? (
          <Table name="API keys" columns={["Name", "Permissions", "Created", "Last used", "Actions"]}>
            {data.apiKeys
              .filter((key) => !key.revokedAt)
              .map((key) => (
                <tr key={key.id}>
                  <Cell header>{key.name}</Cell>
                  <Cell>{key.permissions.join(", ")}</Cell>
                  <Cell>{when(key.createdAt)}</Cell>
                  <Cell>{when(key.lastUsedAt)}</Cell>
                  <Cell>
                    <Button variant="secondary" aria-label={`Revoke ${key.name}`} onClick={() => void onRevokeKey(key.id, key.name)}>
                      Revoke
                    </Button>
                  </Cell>
                </tr>
              ))}
          </Table>
        ) : null}
      </section>
      {/* Owners and admins hold webhooks:manage; others would only be refused. */}
      {manages && teamId ? <WebhooksSection teamId={teamId} onStatus={setStatus} /> : null}
      <section className="flex flex-col gap-3">
        <h2 className="text-lg font-semibold">Password</h2>
        <div>
          <Button variant="secondary" onClick={() => setChanging(true)}>
            Change password
          </Button>
        </div>
      </section>
      <ExportDataSection />
      <PasswordDialog
        open={changing}
        onClose={() => setChanging(false)}
        onChanged={() => {
          setStatus("Password changed. Your other sessions were ended.");
          reload();
        }}
      />
      <DeleteAccountSection onDeleted={logOut} />
      <CreateKeyDialog
        open={creating}
        teamId={teamId}
        permissions={data?.me?.permissions ?? []}
        onClose={() => setCreating(false)}
        onCreated={reload}
      />
    </>
  );
}

const keySchema = z.object({
  name: z.string().trim().min(1, "Name the key"),
  permissions: z.array(z.string()).min(1, "Choose at least one permission"),
});
type KeyValues = z.infer<typeof keySchema>;

function CreateKeyDialog({
  open,
  teamId,
  permissions,
  onClose,
  onCreated,
}: {
  open: boolean;
  teamId: string | null;
  permissions: string[];
  onClose: () => void;
  onCreated: () => void;
}) {
  const [, createKey] = useMutation(CreateApiKey);
  const [key, setKey] = useState<string | null>(null);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState, reset } = useForm<KeyValues>({
    resolver: zodResolver(keySchema),
    defaultValues: { name: "", permissions: [] },
  });
  const close = () => {
    // The key is shown once: closing forgets it.
    setKey(null);
    setErrors([]);
    reset();
    onClose();
  };
  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await createKey({ ...values, teamId });
    if (result.error || !result.data) {
      setErrors(applyServerErrors(fromCombined(result.error), ["name", "permissions"], setError));
      return;
    }
    setKey(result.data.createApiKey.key);
    onCreated();
  });
  return (
    <Dialog open={open} title="Create API key" onClose={close}>
      {key ? (
        <ShownOnce
          note={<>Copy the key now: it is shown only once. Use it as &quot;Authorization: Bearer &lt;key&gt;&quot;.</>}
          label="New API key"
          value={key}
          onDone={close}
        />
      ) : (
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <ErrorAlert errors={errors} />
          <TextField label="Name" error={formState.errors.name?.message} {...register("name")} />
          <CheckboxGroup
            legend="Permissions"
            options={permissions}
            error={formState.errors.permissions?.message}
            input={register("permissions")}
          />
          <Button type="submit" disabled={formState.isSubmitting}>
            Create
          </Button>
        </form>
      )}
    </Dialog>
  );
}

const passwordSchema = z.object({
  current: z.string().min(1, "Enter your current password"),
  new: z.string().min(1, "Choose a new password"),
});
type PasswordValues = z.infer<typeof passwordSchema>;

function PasswordDialog({ open, onClose, onChanged }: { open: boolean; onClose: () => void; onChanged: () => void }) {
  const [, change] = useMutation(ChangePassword);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const { register, handleSubmit, setError, formState, reset } = useForm<PasswordValues>({
    resolver: zodResolver(passwordSchema),
    defaultValues: { current: "", new: "" },
  });
  const close = () => {
    reset();
    setErrors([]);
    onClose();
  };
  const onSubmit = handleSubmit(async (values) => {
    setErrors([]);
    const result = await change(values);
    if (result.error) {
      setErrors(applyServerErrors(fromCombined(result.error), ["current", "new"], setError));
      return;
    }
    onChanged();
    close();
  });
  return (
    <Dialog open={open} title="Change password" onClose={close}>
      <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
        <ErrorAlert errors={errors} />
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          error={formState.errors.current?.message}
          {...register("current")}
        />
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          error={formState.errors.new?.message}
          {...register("new")}
        />
        <Button type="submit" disabled={formState.isSubmitting}>
          Save password
        </Button>
      </form>
    </Dialog>
  );
}
