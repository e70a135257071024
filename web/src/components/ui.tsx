"use client";

import {
  forwardRef,
  useEffect,
  useId,
  useRef,
  type ButtonHTMLAttributes,
  type InputHTMLAttributes,
  type ReactNode,
  type Ref,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from "react";
import { errorText, type ServerError } from "@/lib/errors";

export function cx(...names: (string | false | null | undefined)[]): string {
  return names.filter(Boolean).join(" ");
}

const control =
  "w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-slate-900 focus:outline-none focus:ring-2 focus:ring-indigo-500";

interface FieldProps {
  label: string;
  hint?: string;
  error?: string;
}

/** A label, an optional hint and the error of one control; the control gets the ids. */
function Field({
  label,
  hint,
  error,
  id,
  className,
  control: render,
}: FieldProps & {
  id?: string;
  className?: string;
  control: (ids: { id: string; describedBy: string | undefined; invalid: true | undefined }) => ReactNode;
}) {
  const generated = useId();
  const inputId = id ?? generated;
  const errorId = `${inputId}-error`;
  const hintId = `${inputId}-hint`;
  return (
    <div className={cx("flex flex-col gap-1", className)}>
      <label htmlFor={inputId} className="text-sm font-medium text-slate-800">
        {label}
      </label>
      {hint ? (
        <span id={hintId} className="text-xs text-slate-600">
          {hint}
        </span>
      ) : null}
      {render({
        id: inputId,
        describedBy: cx(error && errorId, hint && hintId) || undefined,
        invalid: error ? true : undefined,
      })}
      {error ? (
        <p id={errorId} role="alert" className="text-sm text-red-700">
          {error}
        </p>
      ) : null}
    </div>
  );
}

type InputProps = FieldProps & InputHTMLAttributes<HTMLInputElement>;

/** An input with its label (the input's accessible name) and its error below. */
export const TextField = forwardRef<HTMLInputElement, InputProps>(function TextField(
  { label, hint, error, id, className, ...rest },
  ref,
) {
  return (
    <Field
      label={label}
      hint={hint}
      error={error}
      id={id}
      className={className}
      control={(ids) => (
        <input
          ref={ref}
          id={ids.id}
          className={control}
          aria-invalid={ids.invalid}
          aria-describedby={ids.describedBy}
          {...rest}
        />
      )}
    />
  );
});

type TextAreaProps = FieldProps & TextareaHTMLAttributes<HTMLTextAreaElement>;

export const TextAreaField = forwardRef<HTMLTextAreaElement, TextAreaProps>(function TextAreaField(
  { label, hint, error, id, className, ...rest },
  ref,
) {
  return (
    <Field
      label={label}
      hint={hint}
      error={error}
      id={id}
      className={className}
      control={(ids) => (
        <textarea
          ref={ref}
          id={ids.id}
          className={control}
          aria-invalid={ids.invalid}
          aria-describedby={ids.describedBy}
          {...rest}
        />
      )}
    />
  );
});

type SelectProps = FieldProps & SelectHTMLAttributes<HTMLSelectElement> & { children: ReactNode };

export const SelectField = forwardRef<HTMLSelectElement, SelectProps>(function SelectField(
  { label, hint, error, id, className, children, ...rest },
  ref,
) {
  return (
    <Field
      label={label}
      hint={hint}
      error={error}
      id={id}
      className={className}
      control={(ids) => (
        <select
          ref={ref}
          id={ids.id}
          className={control}
          aria-invalid={ids.invalid}
          aria-describedby={ids.describedBy}
          {...rest}
        >
          {children}
        </select>
      )}
    />
  );
});

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & { variant?: "primary" | "secondary" | "danger" };

export function Button({ variant = "primary", className, type = "button", ...rest }: ButtonProps) {
  return (
    <button
      type={type}
      className={cx(
        "inline-flex items-center justify-center rounded-md px-3 py-2 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2 disabled:opacity-60",
        variant === "primary" && "bg-indigo-700 text-white hover:bg-indigo-800",
        variant === "secondary" && "border border-slate-300 bg-white text-slate-900 hover:bg-slate-50",
        variant === "danger" && "bg-red-700 text-white hover:bg-red-800",
        className,
      )}
      {...rest}
    />
  );
}

/** The server's messages, as they are, in role "alert". */
export function ErrorAlert({ errors }: { errors: readonly ServerError[] }) {
  if (errors.length === 0) return null;
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800">
      {errors.map((error, index) => (
        <p key={index}>{errorText(error)}</p>
      ))}
    </div>
  );
}

/** A modal dialog (the browser's <dialog>: focus moves in, Escape closes). */
export function Dialog({
  open,
  title,
  onClose,
  children,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onClose={onClose}
      className="m-auto w-[min(28rem,calc(100vw-2rem))] rounded-lg p-0 shadow-xl backdrop:bg-slate-900/40"
    >
      <div className="flex flex-col gap-4 p-5">
        <div className="flex items-start justify-between gap-4">
          <h2 id={titleId} className="text-lg font-semibold">
            {title}
          </h2>
          <button
            type="button"
            onClick={onClose}
            className="rounded px-2 text-slate-600 hover:text-slate-900 focus-visible:ring-2 focus-visible:ring-indigo-500"
            aria-label="Close"
          >
            ×
          </button>
        </div>
        {open ? children : null}
      </div>
    </dialog>
  );
}

export function PageHeading({ children }: { children: ReactNode }) {
  return <h1 className="text-2xl font-semibold text-slate-900">{children}</h1>;
}

export function Card({ title, children }: { title?: string; children: ReactNode }) {
  return (
    <section className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
      {title ? <h2 className="mb-3 text-lg font-semibold">{title}</h2> : null}
      {children}
    </section>
  );
}

export function Loading() {
  return (
    <p role="status" className="text-sm text-slate-600">
      Loading…
    </p>
  );
}

/**
 * A checkbox per option, each named by the option itself. `input` carries the
 * form library's props (React Hook Form's `register(name)`): one name for all.
 */
export function CheckboxGroup({
  legend,
  options,
  error,
  input,
}: {
  legend: string;
  options: readonly string[];
  error?: string;
  input: InputHTMLAttributes<HTMLInputElement> & { ref?: Ref<HTMLInputElement> };
}) {
  return (
    <fieldset className="flex flex-col gap-1">
      <legend className="mb-1 text-sm font-medium">{legend}</legend>
      <div className="grid max-h-56 grid-cols-1 gap-1 overflow-y-auto sm:grid-cols-2">
        {options.map((option) => (
          <label key={option} className="flex items-center gap-2 text-sm">
            <input type="checkbox" value={option} {...input} />
            {option}
          </label>
        ))}
      </div>
      {error ? (
        <p role="alert" className="text-sm text-red-700">
          {error}
        </p>
      ) : null}
    </fieldset>
  );
}

/** A secret the server hands out once (a key, a signing secret): its note, the value selectable, and Done. */
export function ShownOnce({ note, label, value, onDone }: { note: ReactNode; label: string; value: string; onDone: () => void }) {
  return (
    <div className="flex flex-col gap-3">
      <p className="text-sm">{note}</p>
      <TextField label={label} readOnly value={value} onFocus={(event) => event.currentTarget.select()} />
      <Button onClick={onDone}>Done</Button>
    </div>
  );
}
