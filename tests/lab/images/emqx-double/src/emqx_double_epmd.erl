%% emqx-double (a test double of EMQX 4.4.4, not EMQX): an epmd module that
%% needs no epmd. Like ekka's, every node listens on 4370 + N, N being the
%% integer that ends its short name (rem 60000, 0 when none); names that start
%% with "remsh" (CLI nodes) take any free port.
-module(emqx_double_epmd).

-export([start_link/0, register_node/2, register_node/3,
         port_please/2, port_please/3, listen_port_please/2,
         address_please/3, names/0, names/1, port/1]).

-define(BASE_PORT, 4370).
-define(DIST_VERSION, 6).

start_link() -> ignore.

register_node(Name, Port) -> register_node(Name, Port, inet).
register_node(_Name, _Port, _Family) ->
    %% Creation: any non-zero 32-bit value; a new one on every start.
    {ok, rand:uniform(16#fffffff0) + 3}.

listen_port_please(Name, _Host) -> {ok, port(Name)}.

port_please(Name, Host) -> port_please(Name, Host, infinity).
port_please(Name, _Host, _Timeout) -> {port, port(Name), ?DIST_VERSION}.

address_please(_Name, Host, Family) -> inet:getaddr(Host, Family).

names() -> names(undefined).
names(_Host) -> {error, address}.

%% Distribution port for a short node name (string or atom).
port(Name) when is_atom(Name) -> port(atom_to_list(Name));
port(Name) when is_binary(Name) -> port(binary_to_list(Name));
port("remsh" ++ _) -> 0;
port(Name) ->
    Short = hd(string:split(Name, "@")),
    case re:run(Short, "[0-9]+$", [{capture, first, list}]) of
        {match, [Digits]} -> ?BASE_PORT + list_to_integer(Digits) rem 60000;
        nomatch -> ?BASE_PORT
    end.
